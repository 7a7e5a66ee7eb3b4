#include "server/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>

#include "coordinator/coordinator.h"
#include "datastore/memory_datastore.h"
#include "datastore/postgres_cache_invalidator.h"
#include "datastore/postgres_datastore.h"
#include "datastore/repository_cache.h"
#include "server/work_pool.h"
#include "replication/replicator.h"
#include "log/log.h"
#include "metrics/exposer.h"
#include "metrics/metrics.h"
#include "nodes/health_manager.h"
#include "nodes/node_set.h"
#include "protoregistry/registry.h"
#include "proxy/options.h"
#include "proxy/proxy.h"
#include "routing/repository_router.h"
#include "server/listen.h"
#include "server/reload.h"
#include "server/systemd_supervision.h"
#include "systemd/notify.h"
#include "services/local_director.h"
#include "systemd/activation.h"

namespace praefect::server {
namespace {

metrics::GrpcType ToGrpcType(protoregistry::Shape shape) {
  switch (shape) {
    case protoregistry::Shape::kUnary: return metrics::GrpcType::kUnary;
    case protoregistry::Shape::kClientStream: return metrics::GrpcType::kClientStream;
    case protoregistry::Shape::kServerStream: return metrics::GrpcType::kServerStream;
    case protoregistry::Shape::kBidiStream: return metrics::GrpcType::kBidiStream;
  }
  return metrics::GrpcType::kBidiStream;
}

StatusOr<std::string> ReadPem(const std::string& path, const char* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FailedPrecondition(std::string(key) + " \"" + path + "\": cannot read it: " + std::strerror(errno) +
                                     ": check the path and that praefect's user may read it");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN") == std::string::npos)
    return FailedPrecondition(std::string(key) + " \"" + path + "\" is not PEM (no -----BEGIN line)");
  return text.str();
}

// [tls] certificate and key for tls_listen_addr (the key from key_path or
// inline `key`). With key_path, grpc re-reads both files every second, so
// a renewed certificate (same paths) serves new connections at once,
// SIGHUP or not; a pair that does not load keeps the previous one. An
// inline key is read once.
StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials(const config::Tls& tls) {
  auto cert = ReadPem(tls.certificate_path, "tls.certificate_path");
  if (!cert.ok()) return cert.status();
  std::string key = tls.key;
  if (key.empty()) {
    auto read = ReadPem(tls.key_path, "tls.key_path");
    if (!read.ok()) return read.status();
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls.key_path, tls.certificate_path, /*refresh_interval_sec=*/1);
    grpc::experimental::TlsServerCredentialsOptions options(provider);
    options.watch_identity_key_cert_pairs();
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    return grpc::experimental::TlsServerCredentials(options);
  }
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({key, *cert});
  return grpc::SslServerCredentials(options);
}

int Fail(std::ostream& err, const std::string& message) {
  err << "praefect: " << message << "\n";
  log::Error("praefect could not start", {{"error", message}});
  return 1;
}

}  // namespace

int Run(const config::Config& config, std::ostream& err, const RunOptions& options) {
  // Every thread started from here on (grpc's included) inherits the mask;
  // this thread takes the signals with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ApplyLogging(config.logging);

  if (std::vector<std::string> problems = ServeProblems(config); !problems.empty())
    return Fail(err, problems.front());
  // Sockets passed by systemd replace the configured addresses of their
  // roles: `listen` is the configuration with those addresses cleared.
  auto activation = systemd::Activation::Take(config);
  if (!activation.ok()) return Fail(err, activation.status().message());
  const config::Config& listen = (*activation)->config();
  if (listen.listen_addr.empty() && listen.socket_path.empty() && listen.tls_listen_addr.empty() &&
      !(*activation)->any())
    return Fail(err, "nothing to listen on: set listen_addr, tls_listen_addr and/or socket_path in the configuration");
  std::shared_ptr<grpc::ServerCredentials> tls_credentials;
  if (!listen.tls_listen_addr.empty()) {
    auto creds = TlsCredentials(config.tls);
    if (!creds.ok()) return Fail(err, creds.status().message());
    tls_credentials = std::move(*creds);
  }

  std::vector<protoregistry::MethodSpec> specs;
  for (const config::MethodEntry& e : config.registry_methods) {
    specs.push_back({e.name, e.operation, e.scope, e.target_repository_field, e.additional_repository_field,
                     e.storage_field, e.shape});
  }
  auto registry = protoregistry::Registry::Create(specs);
  if (!registry.ok()) return Fail(err, registry.status().message());

  proxy::Options proxy_options;
  auto nodes = nodes::NodeSet::Create(config, proxy::UpstreamChannelArguments(proxy_options));
  if (!nodes.ok()) return Fail(err, nodes.status().message());

  metrics::Options metrics_options;
  metrics_options.grpc_latency_buckets = config.prometheus.grpc_latency_buckets;
  const protoregistry::Registry* reg = registry->get();
  metrics_options.grpc_type = [reg](std::string_view method) -> std::optional<metrics::GrpcType> {
    // The health service is not in the registry of proxied methods.
    if (method == "/grpc.health.v1.Health/Check") return metrics::GrpcType::kUnary;
    if (method == "/grpc.health.v1.Health/Watch") return metrics::GrpcType::kServerStream;
    const protoregistry::MethodInfo* info = reg->Lookup(method);
    if (info == nullptr) return std::nullopt;
    return ToGrpcType(info->shape);
  };
  metrics::Metrics metrics(std::move(metrics_options));

  // The datastore: PostgreSQL when [database] names one (the schema was
  // checked before Run), else memory, as Praefect's memory_queue_enabled.
  std::unique_ptr<datastore::Datastore> store_owner;
  // The read cache, kept fresh by LISTEN on the session-pooled connection
  // (declared before the invalidator, which points at it).
  std::unique_ptr<datastore::RepositoryCache> cache;
  std::unique_ptr<datastore::PostgresCacheInvalidator> invalidator;
  if (!config.database.host.empty() || !config.database.dbname.empty()) {
    store_owner = std::make_unique<datastore::PostgresDatastore>(datastore::postgres::NewPool(config.database),
                                                                 datastore::postgres::NewListener(config.database));
    log::Info("repository metadata and replication jobs are kept in PostgreSQL",
              {{"database", config.database.dbname}, {"host", config.database.host}});
    const config::Database& db = config.database;
    if (!db.session_pooled.host.empty() || db.session_pooled.port != 0 || !db.session_pooled.dbname.empty() ||
        !db.host_no_proxy.empty() || db.port_no_proxy != 0) {
      cache = std::make_unique<datastore::RepositoryCache>();
      invalidator = std::make_unique<datastore::PostgresCacheInvalidator>(cache.get(),
                                                                          datastore::postgres::NewListener(db));
    } else {
      log::Info("reads distribution caching is disabled: every read looks its repository up in the database. "
                "Configure [database.session_pooled] (a direct or session-pooled connection) to enable it");
    }
    if (config.memory_queue_enabled)
      log::Warn("memory_queue_enabled is ignored: with [database] set, the replication queue is kept in "
                "PostgreSQL, where every praefect sees it");
  } else {
    store_owner = std::make_unique<datastore::MemoryDatastore>();
    log::Warn("no [database] configured: repository metadata and replication jobs are kept in memory; they are "
              "lost when praefect stops, and repositories created before a restart are unknown after it. Configure "
              "[database] for production",
              {{"memory_queue_enabled", config.memory_queue_enabled ? "true" : "false"}});
  }
  datastore::Datastore& store = *store_owner;
  replication::Options replication_options;
  replication_options.batch_size = static_cast<int>(config.replication.batch_size);
  replication_options.workers_per_storage = static_cast<int>(config.replication.parallel_storage_processing_workers);
  replication::Replicator replicator(&store, nodes->get(), &metrics, replication_options);
  // Blocking datastore calls run on a small pool, off gRPC's threads.
  WorkPool work_pool(8);

  nodes::HealthManagerOptions health_options;
  health_options.praefect_name = nodes::PraefectName(config);
  health_options.window = std::chrono::duration_cast<std::chrono::milliseconds>(config.failover.quorum_window);
  nodes::HealthManager health(&store, nodes->get(), health_options);
  routing::Options routing_options;
  routing_options.per_repository = config.failover.enabled;
  routing_options.window = health_options.window;
  routing::RepositoryRouter repository_router(&store, nodes->get(), &health, routing_options);
  if (config.failover.enabled) {
    log::Info("failover: per-repository primaries, elected by the praefects' quorum view of node health",
              {{"praefect_name", health_options.praefect_name}});
  } else {
    for (const auto& vs : (*nodes)->virtual_storages())
      log::Info("failover disabled: every write goes to the configured primary",
                {{"virtual_storage", vs.name}, {"primary", vs.Primary().storage}});
  }

  coordinator::PrimaryRouter router;
  coordinator::Options coordinator_options;
  coordinator_options.auth_token = config.auth.token;
  coordinator_options.auth_transitioning = config.auth.transitioning;
  coordinator_options.executor = [&work_pool](std::function<void()> fn) { work_pool.Submit(std::move(fn)); };
  coordinator_options.repository_router = &repository_router;
  coordinator_options.cache = cache.get();
  coordinator::Coordinator coordinator(reg, nodes->get(), &router, &metrics, coordinator_options, &store);
  // Requests are limited by [limits]; responses come from the nodes, which
  // praefect trusts, and stay unlimited (proxy_options, used for the
  // channels above).
  proxy::Options request_options = proxy_options;
  request_options.max_message_bytes = static_cast<int>(config.limits.max_message_bytes);
  request_options.max_message_hint = " (praefect's [limits] max_message_bytes; Gitaly's clients split larger data "
                                     "into several messages)";
  // RepositoryExists and ServerInfo are answered by praefect itself, on the
  // proxy's path, so that they too are admitted before anything is read.
  services::LocalDirectorOptions local_options;
  local_options.executor = coordinator_options.executor;
  services::LocalDirector director(&coordinator, nodes->get(), &store, local_options);
  proxy::Proxy proxy(&director, request_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  proxy::ConfigureServer(proxy_options, &builder);
  // Gitaly's keepalive enforcement, so clients that ping Gitaly every 20 s
  // may ping praefect too (10 s leaves room for timer jitter).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(metrics.NewServerInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  int tcp_port = 0;
  if (!listen.listen_addr.empty()) {
    if (Status st = ProbeTcpListen(listen.listen_addr); !st.ok()) return Fail(err, st.message());
    builder.AddListeningPort(listen.listen_addr, grpc::InsecureServerCredentials(), &tcp_port);
  }
  int tls_port = 0;
  if (!listen.tls_listen_addr.empty()) {
    if (Status st = ProbeTcpListen(listen.tls_listen_addr); !st.ok()) return Fail(err, st.message());
    builder.AddListeningPort(listen.tls_listen_addr, tls_credentials, &tls_port);
  }
  if (!listen.socket_path.empty()) {
    if (Status st = PrepareUnixSocket(listen.socket_path); !st.ok()) return Fail(err, st.message());
    builder.AddListeningPort("unix:" + listen.socket_path, grpc::InsecureServerCredentials());
  }
  builder.RegisterCallbackGenericService(&proxy);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return Fail(err, "cannot start the gRPC server on the configured addresses (see the log above)");
  if (!listen.listen_addr.empty() && tcp_port == 0)
    return Fail(err, "cannot listen on listen_addr \"" + listen.listen_addr + "\"");
  if (!listen.tls_listen_addr.empty() && tls_port == 0)
    return Fail(err, "cannot listen on tls_listen_addr \"" + listen.tls_listen_addr + "\"");
  if (Status st = (*activation)->Serve(server.get()); !st.ok()) {
    server->Shutdown();
    return Fail(err, st.message());
  }

  std::unique_ptr<metrics::Exposer> exposer;
  if (int fd = (*activation)->TakeMetricsFd(); fd >= 0) {
    auto adopted = metrics::Exposer::Adopt(fd, {metrics::MetricsEndpoint(metrics)});
    if (!adopted.ok()) {
      server->Shutdown();
      return Fail(err, adopted.status().message());
    }
    exposer = std::move(*adopted);
  } else if (!listen.prometheus_listen_addr.empty()) {
    auto listening = metrics::Exposer::Listen(listen.prometheus_listen_addr, {metrics::MetricsEndpoint(metrics)});
    if (!listening.ok()) {
      server->Shutdown();
      return Fail(err, listening.status().message());
    }
    exposer = std::move(*listening);
  }

  (*nodes)->SetHealthObserver([&metrics](const nodes::Node& node, std::chrono::nanoseconds latency, bool) {
    metrics.NodeLatency(node.storage).ObserveDuration(latency);
  });
  // A first verdict on every node before the periodic checks, recorded
  // for the quorum.
  (*nodes)->CheckAll(std::chrono::seconds(1));
  if (Status st = health.Sync(); !st.ok())
    log::Warn("cannot record node health in the database yet", {{"error", st.message()}});
  health.Start();
  (*nodes)->StartHealthChecks(std::chrono::seconds(1), std::chrono::seconds(1));
  replicator.Start();

  for (const auto& vs : (*nodes)->virtual_storages()) {
    for (const auto& node : vs.nodes) {
      if (!node->healthy.load())
        log::Warn("node is unhealthy at start: praefect routes around it until it answers its health checks",
                  {{"virtual_storage", vs.name}, {"storage", node->storage}, {"address", node->address}});
      log::Info("node", {{"virtual_storage", vs.name},
                         {"storage", node->storage},
                         {"address", node->address},
                         {"primary", !config.failover.enabled && node.get() == &vs.Primary() ? "true" : "false"},
                         {"healthy", node->healthy.load() ? "true" : "false"}});
    }
  }
  if (!listen.listen_addr.empty())
    log::Info("listening", {{"address", listen.listen_addr}, {"port", tcp_port}});
  if (!listen.tls_listen_addr.empty())
    log::Info("listening", {{"address", listen.tls_listen_addr}, {"port", tls_port}, {"tls", "true"}});
  if (!listen.socket_path.empty()) log::Info("listening", {{"address", "unix:" + listen.socket_path}});
  if (exposer && !listen.prometheus_listen_addr.empty())
    log::Info("serving metrics", {{"address", listen.prometheus_listen_addr}, {"port", exposer->port()}});

  // Type=notify: every listener is bound (BuildAndStart, the exposer) and,
  // with [database], praefect serve saw the database answer with a current
  // schema before Run.
  std::unique_ptr<SystemdSupervision> supervision;
  if (systemd::NotifyEnabled()) {
    supervision = std::make_unique<SystemdSupervision>(server.get(), nodes->get(), &store, &metrics);
    systemd::NotifyReady();
  }

  config::Config running = config;
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    running = Reload(running, options.reload, &coordinator, nodes->get());
    // The TLS bridge's certificate and key, re-read from their files (the
    // grpc TLS listener watches its files itself, see TlsCredentials).
    if (Status st = (*activation)->ReloadTls(running.tls); !st.ok())
      log::Error("reload: the TLS socket keeps its certificate: " + st.message());
  }
  const auto stop_timeout = running.graceful_stop_timeout;
  systemd::NotifyStopping();
  // Let systemd's stop timeout cover the graceful stop (it is only ever
  // extended by this, never shortened).
  if (systemd::NotifyEnabled()) systemd::NotifyExtendTimeout(
      std::chrono::duration_cast<std::chrono::microseconds>(stop_timeout) + std::chrono::seconds(15));
  supervision.reset();
  log::Info("stopping: in-flight calls get graceful_stop_timeout to finish",
            {{"signal", sig}, {"graceful_stop_timeout_s",
                               static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(stop_timeout)
                                                          .count())}});
  (*activation)->StopAccepting();
  server->Shutdown(std::chrono::system_clock::now() + stop_timeout);
  replicator.Stop();
  (*nodes)->StopHealthChecks();
  health.Stop();
  exposer.reset();
  if (!listen.socket_path.empty()) unlink(listen.socket_path.c_str());
  log::Info("stopped");
  return 0;
}

}  // namespace praefect::server
