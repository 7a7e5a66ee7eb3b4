#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>

#include "common/duration.h"
#include "coordinator/coordinator.h"
#include "datastore/memory_datastore.h"
#include "datastore/postgres_cache_invalidator.h"
#include "datastore/postgres_datastore.h"
#include "datastore/repository_cache.h"
#include "http2/server.h"
#include "backchannel/client_layer.h"
#include "backchannel/server.h"
#include "http2/sockets.h"
#include "http2/tls_layer.h"
#include "log/log.h"
#include "metrics/exposer.h"
#include "metrics/metrics.h"
#include "metrics/process_metrics.h"
#include "nodes/channel_args.h"
#include "nodes/health_manager.h"
#include "nodes/node_set.h"
#include "protoregistry/registry.h"
#include "reconcile/content_verifier.h"
#include "reconcile/repository_cleaner.h"
#include "reconcile/reconciler.h"
#include "reconcile/verifier.h"
#include "replication/replicator.h"
#include "routing/repository_router.h"
#include "server/access_observer.h"
#include "server/certificate_expiry.h"
#include "server/db_metrics.h"
#include "server/observability.h"
#include "server/listen.h"
#include "server/reload.h"
#include "server/serving_tls.h"
#include "server/systemd_supervision.h"
#include "server/work_pool.h"
#include "services/local_director.h"
#include "services/ref_transaction.h"
#include "transactions/manager.h"
#include "systemd/activation.h"
#include "systemd/notify.h"

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
  systemd::ListenSockets passed = (*activation)->TakeGrpcSockets();
  // The certificate of the TLS listeners, checked now (an expired one or a
  // key that does not match is refused, naming the file).
  std::unique_ptr<ServingTls> serving_tls;
  if (!listen.tls_listen_addr.empty() || passed.tls >= 0) {
    auto loaded = ServingTls::Load(config.tls);
    if (!loaded.ok()) return Fail(err, loaded.status().message());
    serving_tls = std::move(*loaded);
  }

  std::vector<protoregistry::MethodSpec> specs;
  for (const config::MethodEntry& e : config.registry_methods) {
    specs.push_back({e.name, e.operation, e.scope, e.target_repository_field, e.additional_repository_field,
                     e.storage_field, e.shape});
  }
  auto registry = protoregistry::Registry::Create(specs);
  if (!registry.ok()) return Fail(err, registry.status().message());

  metrics::Options metrics_options;
  metrics_options.grpc_latency_buckets = config.prometheus.grpc_latency_buckets;
  metrics_options.reconciliation_buckets = config.reconciliation.histogram_buckets;
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
  metrics.AddRenderer(metrics::ProcessMetricsText);

  // tls:// nodes: the data plane verifies them against the system's CAs.
  std::shared_ptr<const http2::TlsContext> node_tls;
  nodes::MakeClientTls make_node_tls;
  if (auto ctx = NodeTlsContext(); ctx.ok()) {
    node_tls = std::move(*ctx);
    make_node_tls = [node_tls](const std::string& server_name) -> StatusOr<std::unique_ptr<http2::SecureLayer>> {
      return http2::ClientTls(node_tls, server_name, server_name);
    };
  } else {
    log::Warn("no TLS for tls:// nodes: " + ctx.status().message());
  }
  // [backchannel]: node connections as Praefect v16 dials Gitaly (yamux,
  // the nodes' votes back on them). The server they reach is made below,
  // before any data-plane connection is (they are made on the first call).
  std::unique_ptr<backchannel::Server> backchannel_server;
  nodes::MakeBackchannel make_backchannel;
  if (config.backchannel.enabled) {
    make_backchannel = [&backchannel_server, yamux_config = config.yamux](
                           const std::string& peer) -> StatusOr<std::unique_ptr<http2::SecureLayer>> {
      yamux::SessionOptions session;
      session.max_stream_window = yamux_config.maximum_stream_window_size_bytes;
      session.accept_backlog = yamux_config.accept_backlog;
      session.peer = peer;
      auto layer = backchannel::ClientLayer::Create(backchannel_server.get(), std::move(session));
      if (!layer.ok()) return layer.status();
      return std::unique_ptr<http2::SecureLayer>(std::move(*layer));
    };
  }
  // praefect's own calls to the nodes are counted (grpc_client_*).
  auto nodes = nodes::NodeSet::Create(config, nodes::NodeChannelArguments(), make_node_tls, make_backchannel,
                                      CountNodeCalls(&metrics));
  if (!nodes.ok()) return Fail(err, nodes.status().message());


  // The datastore: PostgreSQL when [database] names one (the schema was
  // checked before Run), else memory, as Praefect's memory_queue_enabled.
  std::unique_ptr<datastore::Datastore> store_owner;
  // The read cache, kept fresh by LISTEN on the session-pooled connection
  // (declared before the invalidator, which points at it).
  std::unique_ptr<datastore::RepositoryCache> cache;
  std::unique_ptr<datastore::PostgresCacheInvalidator> invalidator;
  // The operators' calls (PraefectInfoService) need the database.
  datastore::OperatorStore* operator_store = nullptr;
  datastore::ReconciliationStore* reconciliation_store = nullptr;
  datastore::ContentVerificationStore* content_store = nullptr;
  datastore::VerificationStore* verification_store = nullptr;
  datastore::PostgresDatastore* cleanup_store = nullptr;
  datastore::GaugesStore* gauges_store = nullptr;
  if (!config.database.host.empty() || !config.database.dbname.empty()) {
    auto postgres_store = std::make_unique<datastore::PostgresDatastore>(
        datastore::postgres::NewPool(config.database), datastore::postgres::NewListener(config.database));
    operator_store = postgres_store.get();
    reconciliation_store = postgres_store.get();
    content_store = postgres_store.get();
    verification_store = postgres_store.get();
    cleanup_store = postgres_store.get();
    gauges_store = postgres_store.get();
    store_owner = std::move(postgres_store);
    log::Info("repository metadata and replication jobs are kept in PostgreSQL",
              {{"database", config.database.dbname}, {"host", config.database.host}});
    const config::Database& db = config.database;
    if (!db.session_pooled.host.empty() || db.session_pooled.port != 0 || !db.session_pooled.dbname.empty() ||
        !db.host_no_proxy.empty() || db.port_no_proxy != 0) {
      datastore::RepositoryCache::Options cache_options;
      cache_options.on_access = CacheAccessCounters(metrics, **nodes);
      cache = std::make_unique<datastore::RepositoryCache>(std::move(cache_options));
      datastore::PostgresCacheInvalidator::Options invalidator_options;
      for (const char* state : {"connected", "disconnected"}) (void)metrics.NotificationsReconnects(state);
      invalidator_options.on_transition = [&metrics](bool connected) {
        metrics.NotificationsReconnects(connected ? "connected" : "disconnected").Increment();
      };
      invalidator = std::make_unique<datastore::PostgresCacheInvalidator>(
          cache.get(), datastore::postgres::NewListener(db), std::move(invalidator_options));
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
  // A job that dies on a node that is healthy (it failed just after the
  // node's return, e.g. on references the interrupted write still held)
  // leaves its replica outdated until the next round: ask for one now, at
  // most once a minute (a replica that can never be repaired would
  // otherwise loop). The reconciler is made below; set before it starts.
  // (Declared here, outliving the replicator; the workers see it through
  // the atomic, set once it runs.)
  std::unique_ptr<reconcile::Reconciler> reconciler;
  std::atomic<reconcile::Reconciler*> reconciler_running{nullptr};
  auto last_dead_round = std::make_shared<std::atomic<int64_t>>(0);
  replication_options.on_dead = [&reconciler_running, node_set = nodes->get(),
                                 last_dead_round](const datastore::ReplicationJob& job) {
    const nodes::VirtualStorage* vs = node_set->Find(job.virtual_storage);
    const nodes::Node* target = vs == nullptr ? nullptr : vs->FindNode(job.target_node_storage);
    reconcile::Reconciler* running = reconciler_running.load();
    if (running == nullptr || target == nullptr || !target->healthy.load()) return;
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t last = last_dead_round->load();
    if (now - last < 60 || !last_dead_round->compare_exchange_strong(last, now)) return;
    log::Info("a replication job died on a healthy node: reconciling now",
              {{"virtual_storage", job.virtual_storage},
               {"storage", job.target_node_storage},
               {"relative_path", job.relative_path}});
    running->RequestRound();
  };
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
  PreregisterElections(metrics, **nodes);
  routing_options.on_election = [&metrics](std::string_view vs, std::string_view storage) {
    metrics.PrimaryElections(vs, storage.empty() ? "none" : storage).Increment();
  };
  routing::RepositoryRouter repository_router(&store, &health, routing_options);
  if (config.failover.enabled) {
    log::Info("failover: per-repository primaries, elected by the praefects' quorum view of node health",
              {{"praefect_name", health_options.praefect_name}});
  } else {
    for (const auto& vs : (*nodes)->virtual_storages())
      log::Info("failover disabled: every write goes to the configured primary",
                {{"virtual_storage", vs.name}, {"primary", vs.Primary().storage}});
  }

  // Reference transactions: the coordinator registers them, the nodes vote
  // on them (gitaly.RefTransaction).
  transactions::Manager transaction_manager(&metrics);
  coordinator::PrimaryRouter router;
  coordinator::Options coordinator_options;
  if (config.backchannel.enabled) coordinator_options.transactions = &transaction_manager;
  coordinator_options.auth_token = config.auth.token;
  coordinator_options.auth_transitioning = config.auth.transitioning;
  coordinator_options.executor = [&work_pool](std::function<void()> fn) { work_pool.Submit(std::move(fn)); };
  coordinator_options.repository_router = &repository_router;
  coordinator_options.cache = cache.get();
  coordinator::Coordinator coordinator(reg, nodes->get(), &router, &metrics, coordinator_options, &store);
  // RepositoryExists, ServerInfo, PraefectInfoService and the health service are answered by
  // praefect itself, on the data plane, admitted like every other call.
  services::RefTransactionService ref_transactions(&transaction_manager);
  if (config.backchannel.enabled) {
    auto made = backchannel::Server::Create(&ref_transactions);
    if (!made.ok()) return Fail(err, made.status().message());
    backchannel_server = std::move(*made);
  }
  services::LocalDirectorOptions local_options;
  local_options.ref_transactions = &ref_transactions;
  local_options.executor = coordinator_options.executor;
  local_options.operator_store = operator_store;
  local_options.health_window = health_options.window;
  services::LocalDirector director(&coordinator, nodes->get(), &store, local_options);
  std::unique_ptr<http2::CallObserver> call_metrics = metrics.NewCallObserver();
  // Every finished call: counted, then its access log line.
  std::unique_ptr<http2::CallObserver> observer =
      NewAccessObserver({call_metrics.get()}, [reg](std::string_view method) {
        const protoregistry::MethodInfo* info = reg->Lookup(method);
        return info != nullptr && info->shape != protoregistry::Shape::kUnary;
      });

  http2::ServerOptions plane_options;
  plane_options.loops = 2;
  plane_options.proxy.director = &director;
  plane_options.proxy.observer = observer.get();
  // Requests are limited by [limits]; responses come from the nodes, which
  // praefect trusts, and are never held whole.
  plane_options.proxy.max_message_bytes = config.limits.max_message_bytes;
  plane_options.proxy.max_message_hint =
      " (praefect's [limits] max_message_bytes; Gitaly's clients split larger data into several messages)";
  auto plane = http2::Server::Create(plane_options);
  if (!plane.ok()) return Fail(err, plane.status().message());
  http2::Server& server = **plane;
  // Every listener: the configured addresses, and the sockets systemd passed.
  int tcp_port = 0;
  int tls_port = 0;
  // gitaly_praefect_connections_total{type}: tcp, tls or unix.
  auto serve = [&](StatusOr<int> fd, const std::string& name, bool tls, int* port) -> Status {
    if (!fd.ok()) return fd.status();
    if (port != nullptr) *port = http2::BoundPort(*fd);
    const bool unix_socket = !tls && http2::BoundPort(*fd) == 0;
    metrics::Counter accepted = metrics.Connections(tls ? "tls" : unix_socket ? "unix" : "tcp");
    return server.AddListener(*fd, name, tls ? serving_tls->ForListener() : nullptr,
                              [accepted]() mutable { accepted.Increment(); });
  };
  if (!listen.listen_addr.empty()) {
    if (Status st = serve(http2::ListenTcp(listen.listen_addr, "listen_addr"), "listen_addr", false, &tcp_port); !st.ok())
      return Fail(err, st.message());
  }
  if (!listen.tls_listen_addr.empty()) {
    if (Status st = serve(http2::ListenTcp(listen.tls_listen_addr, "tls_listen_addr"), "tls_listen_addr", true, &tls_port); !st.ok())
      return Fail(err, st.message());
  }
  if (!listen.socket_path.empty()) {
    if (Status st = PrepareUnixSocket(listen.socket_path); !st.ok()) return Fail(err, st.message());
    if (Status st = serve(http2::ListenUnix(listen.socket_path), "socket_path", false, nullptr); !st.ok())
      return Fail(err, st.message());
  }
  for (auto [fd, name, tls] : {std::tuple{passed.plain_inet, "praefect socket (inet)", false},
                               std::tuple{passed.plain_unix, "praefect socket (unix)", false},
                               std::tuple{passed.tls, "praefect-tls socket", true}}) {
    if (fd < 0) continue;
    if (Status st = serve(fd, name, tls, nullptr); !st.ok()) return Fail(err, st.message());
  }

  if (!config.prometheus_exclude_database_from_default_metrics)
    log::Info("prometheus_exclude_database_from_default_metrics = false changes nothing (Praefect dropped it in "
              "15.x): the database gauges are served on /db_metrics only, queried at each scrape of it; scrape "
              "/db_metrics as a job of its own and remove the key");
  // /db_metrics: the database gauges, queried at scrape time.
  std::unique_ptr<DatabaseMetrics> db_metrics =
      NewDatabaseMetrics(config, **nodes, gauges_store, health_options.window);
  const std::vector<metrics::Exposer::Endpoint> endpoints = MetricsEndpoints(metrics, db_metrics.get());
  std::unique_ptr<metrics::Exposer> exposer;
  if (int fd = (*activation)->TakeMetricsFd(); fd >= 0) {
    auto adopted = metrics::Exposer::Adopt(fd, endpoints);
    if (!adopted.ok()) return Fail(err, adopted.status().message());
    exposer = std::move(*adopted);
  } else if (!listen.prometheus_listen_addr.empty()) {
    auto listening = metrics::Exposer::Listen(listen.prometheus_listen_addr, endpoints);
    if (!listening.ok()) return Fail(err, listening.status().message());
    exposer = std::move(*listening);
  }

  (*nodes)->SetHealthObserver(NodeHealthMetrics(metrics, **nodes));
  // A first verdict on every node before the periodic checks, recorded
  // for the quorum.
  (*nodes)->CheckAll(std::chrono::seconds(1));
  if (Status st = health.Sync(); !st.ok())
    log::Warn("cannot record node health in the database yet", {{"error", st.message()}});
  health.Start();
  // Every 500 ms with a 1 s timeout: a hung node (SIGSTOP, a stuck disk)
  // fails a check at most 1.5 s after it stopped answering, and a write
  // held on it is cancelled then (see PrimaryWatch). Two rounds a second
  // cost each praefect 4 small statements a second on PostgreSQL.
  (*nodes)->StartHealthChecks(std::chrono::milliseconds(500), std::chrono::seconds(1));
  replicator.Start();
  // Automatic reconciliation (PostgreSQL only, as in Praefect).
  if (config.reconciliation.scheduling_interval.count() <= 0) {
    log::Info("automatic reconciliation is disabled: [reconciliation] scheduling_interval is 0");
  } else if (reconciliation_store == nullptr) {
    log::Info("Disabled automatic reconciliation as it is only implemented using SQL queue and in-memory queue is "
              "configured.");
  } else {
    reconcile::Options reconcile_options;
    reconcile_options.praefect_name = health_options.praefect_name;
    reconcile_options.interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(config.reconciliation.scheduling_interval);
    reconcile_options.poll = std::clamp(reconcile_options.interval / 10, std::chrono::milliseconds(1000),
                                        std::chrono::milliseconds(10000));
    reconciler = std::make_unique<reconcile::Reconciler>(reconciliation_store, nodes->get(), &metrics,
                                                         reconcile_options);
    reconciler->Start();
    reconciler_running.store(reconciler.get());
  }
  // Content verification (praefect's own; PostgreSQL only).
  std::unique_ptr<reconcile::ContentVerifier> content_verifier;
  if (content_store != nullptr && config.content_verification.repositories_per_minute > 0) {
    reconcile::ContentOptions content_options;
    content_options.repositories_per_second = config.content_verification.repositories_per_minute / 60.0;
    content_verifier = std::make_unique<reconcile::ContentVerifier>(content_store, nodes->get(), &metrics,
                                                                    content_options);
    content_verifier->Start();
  } else {
    log::Info("content verification is disabled",
              {{"reason", content_store == nullptr ? "no [database]"
                                                   : "[content_verification] repositories_per_minute is 0"}});
  }
  // Background verification (PostgreSQL and per-repository elections, as
  // in Praefect): finds replicas missing from their nodes; the reconciler
  // repairs them once their records are gone.
  std::unique_ptr<reconcile::Verifier> verifier;
  const config::BackgroundVerification& verification = config.background_verification;
  if (verification.verification_interval.count() <= 0) {
    log::Info("background verifier is disabled");
  } else if (verification_store == nullptr) {
    log::Info("background verifier is disabled: it needs [database] (the records it verifies are kept there)");
  } else if (!config.failover.enabled) {
    log::Info("background verifier is disabled: it needs per-repository primaries ([failover] enabled = true)");
  } else {
    reconcile::VerifierOptions verifier_options;
    verifier_options.interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(verification.verification_interval);
    verifier_options.delete_invalid_records = verification.delete_invalid_records;
    if (reconciler) verifier_options.on_records_removed = [r = reconciler.get()] { r->RequestRound(); };
    verifier = std::make_unique<reconcile::Verifier>(verification_store, nodes->get(),
                                                     reconcile::NodeExistenceCheck(nodes->get()), &metrics,
                                                     verifier_options);
    verifier->Start();
    log::Info("background verifier started",
              {{"verification_interval", FormatGoDuration(verification.verification_interval)},
               {"delete_invalid_records", verification.delete_invalid_records}});
  }

  // Repository cleanup (Praefect's repocleaner): reports repositories on
  // the nodes that the database does not know; deletes nothing.
  std::unique_ptr<reconcile::RepositoryCleaner> cleaner;
  const config::RepositoriesCleanup& cleanup = config.repositories_cleanup;
  if (cleanup.run_interval.count() <= 0) {
    log::Info("Repository cleanup background task disabled as \"repositories_cleanup.run_interval\" is not set or 0.");
  } else if (cleanup_store == nullptr) {
    log::Info("Repository cleanup background task disabled as there is no database connection configured.");
  } else {
    reconcile::CleanerOptions cleaner_options;
    cleaner_options.run_interval = std::chrono::duration_cast<std::chrono::milliseconds>(cleanup.run_interval);
    cleaner_options.check_interval = std::chrono::duration_cast<std::chrono::milliseconds>(cleanup.check_interval);
    cleaner_options.repositories_in_batch = cleanup.repositories_in_batch;
    cleaner = std::make_unique<reconcile::RepositoryCleaner>(cleanup_store, cleanup_store, nodes->get(), &metrics,
                                                             cleaner_options);
    cleaner->Start();
  }

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
    StatusReporter::More certificate_expiry;
    if (serving_tls) {
      certificate_expiry = [tls = serving_tls.get()] {
        return CertificateExpiryStatus(tls->NotAfter(), std::chrono::system_clock::now());
      };
    }
    supervision = std::make_unique<SystemdSupervision>(
        [&server](std::chrono::milliseconds timeout) { return server.LoopsTurn(timeout); }, nodes->get(), &store,
        &metrics, std::move(certificate_expiry));
    systemd::NotifyReady();
  }

  // gitaly_praefect_tls_certificate_expiry_timestamp_seconds, kept with
  // the certificate served (renewed in place or reloaded).
  std::optional<metrics::Gauge> tls_expiry;
  if (serving_tls) tls_expiry = metrics.TlsCertificateExpiry();
  auto record_expiry = [&] {
    if (tls_expiry)
      tls_expiry->Set(static_cast<double>(
          std::chrono::duration_cast<std::chrono::seconds>(serving_tls->NotAfter().time_since_epoch()).count()));
  };
  record_expiry();
  config::Config running = config;
  // The certificate's expiry, once a day from 14 days before it.
  ExpiryWarnings expiry_warnings;
  auto warn_of_expiry = [&] {
    if (!serving_tls) return;
    if (auto warning = expiry_warnings.Due(serving_tls->NotAfter(), std::chrono::system_clock::now(),
                                           running.tls.certificate_path))
      log::Warn(*warning);
  };
  warn_of_expiry();
  int sig = 0;
  for (;;) {
    // Every second without a signal: a certificate renewed in place is
    // served without a reload.
    const timespec second{1, 0};
    sig = sigtimedwait(&signals, nullptr, &second);
    if (sig < 0) {
      record_expiry();
      warn_of_expiry();
      if (serving_tls) {
        if (auto reloaded = serving_tls->ReloadIfChanged(running.tls)) {
          if (reloaded->ok()) {
            log::Info("the TLS listeners serve the renewed certificate",
                      {{"certificate_path", running.tls.certificate_path}});
          } else {
            log::Warn("the TLS certificate files changed but do not load (yet); the listeners keep the previous "
                      "certificate: " + reloaded->message());
          }
        }
      }
      continue;
    }
    if (sig != SIGHUP) break;
    running = Reload(running, options.reload, &coordinator, nodes->get());
    // The certificate of the TLS listeners, read again (renewed files at the
    // same paths, or new paths): new connections use it.
    if (serving_tls) {
      if (Status st = serving_tls->Reload(running.tls); !st.ok()) {
        log::Error("reload: the TLS listeners keep their certificate: " + st.message());
      } else {
        log::Info("reload: the TLS listeners serve the certificate read now",
                  {{"certificate_path", running.tls.certificate_path}});
      }
    }
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
  director.set_serving(false);
  server.Stop(std::chrono::duration_cast<std::chrono::milliseconds>(stop_timeout));
  // Votes still waiting after the graceful stop are withdrawn (CANCELLED).
  if (backchannel_server) backchannel_server->Shutdown();
  ref_transactions.Shutdown();
  // Answers the Director still owes (work pool) reach the stopped loops,
  // which let go of their calls when the data plane is destroyed.
  work_pool.Drain();
  if (content_verifier) content_verifier->Stop();
  if (cleaner) cleaner->Stop();
  if (verifier) verifier->Stop();
  if (reconciler) reconciler->Stop();
  replicator.Stop();
  (*nodes)->StopHealthChecks();
  health.Stop();
  exposer.reset();
  if (!listen.socket_path.empty()) unlink(listen.socket_path.c_str());
  log::Info("stopped");
  return 0;
}

}  // namespace praefect::server
