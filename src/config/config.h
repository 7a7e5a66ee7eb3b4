#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"

// The configuration tree of praefect: every key of GitLab Praefect's
// config.toml, with Praefect's defaults, plus the few project extensions
// (`secrets_file`, `[[registry.method]]`). A Config is a plain value built
// once by the loader (config/load.h) and never modified afterwards; share it
// as `const Config&` or `std::shared_ptr<const Config>`. Secrets (tokens,
// passwords) hold their final values: systemd credentials and the secrets
// file are already applied.
namespace praefect::config {

enum class LogFormat { kText, kJson };

// logrus levels, as Praefect accepts them ("warning" is a synonym of "warn").
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kFatal, kPanic };

// `[logging] access_log_level`: the level of the access line of a call that
// did not fail through a server fault, or no access log at all.
enum class AccessLogLevel { kOff, kTrace, kDebug, kInfo, kWarn, kError };

enum class ElectionStrategy {
  kPerRepository,  // "per_repository": the only one praefect serves with
  kSql,            // "sql": legacy, accepted by the loader, refused at serve time
  kLocal,          // "local": legacy, accepted by the loader, refused at serve time
};

std::string_view LogFormatName(LogFormat format);
std::string_view LogLevelName(LogLevel level);
std::string_view ElectionStrategyName(ElectionStrategy strategy);

// prometheus/client_golang's DefBuckets, Praefect's default for
// reconciliation.histogram_buckets (seconds).
inline const std::vector<double>& DefaultHistogramBuckets() {
  static const std::vector<double> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return kBuckets;
}

// Praefect's default prometheus.grpc_latency_buckets (seconds).
inline const std::vector<double>& DefaultGrpcLatencyBuckets() {
  static const std::vector<double> kBuckets = {0.001, 0.005, 0.025, 0.1,   0.5,   1.0,
                                               10.0,  30.0,  60.0,  300.0, 1500.0};
  return kBuckets;
}

// [auth]: what clients of praefect must present.
struct Auth {
  std::string token;           // empty: no authentication
  bool transitioning = false;  // let unauthenticated calls through (logged)

  friend bool operator==(const Auth&, const Auth&) = default;
};

// [tls]: certificate for tls_listen_addr.
struct Tls {
  std::string certificate_path;
  std::string key_path;
  std::string key;  // PEM key inline (newer Gitaly spelling), instead of key_path
  // The systemd credential file `key` was read from (kTlsKeyCredential),
  // which then replaces key_path; empty when the key is the configuration's.
  std::string key_credential;

  friend bool operator==(const Tls&, const Tls&) = default;
};

// [logging]
struct Logging {
  LogFormat format = LogFormat::kText;
  LogLevel level = LogLevel::kInfo;
  AccessLogLevel access_log_level = AccessLogLevel::kInfo;  // praefect's own key
  std::string dir;  // accepted, not acted upon (praefect logs to the journal or stderr)

  friend bool operator==(const Logging&, const Logging&) = default;
};

// [sentry]: accepted, not acted upon.
struct Sentry {
  std::string dsn;
  std::string environment;

  friend bool operator==(const Sentry&, const Sentry&) = default;
};

// [prometheus]
struct Prometheus {
  Duration scrape_timeout = std::chrono::seconds(10);
  // Empty: gRPC latency histograms disabled.
  std::vector<double> grpc_latency_buckets = DefaultGrpcLatencyBuckets();

  friend bool operator==(const Prometheus&, const Prometheus&) = default;
};

// [failover]
struct Failover {
  bool enabled = true;
  ElectionStrategy election_strategy = ElectionStrategy::kPerRepository;
  // Error-threshold failover of the legacy electors: loaded and checked, not acted upon.
  Duration error_threshold_window = Duration(0);
  uint32_t write_error_threshold_count = 0;
  uint32_t read_error_threshold_count = 0;
  Duration bootstrap_interval = std::chrono::seconds(1);  // first health checks at start
  Duration monitor_interval = std::chrono::seconds(3);    // health checks afterwards
  // Project extension: the window of the health quorum (node_status rows
  // older than this do not count; see Datastore::GetHealthyStorages).
  Duration quorum_window = std::chrono::seconds(10);
  bool read_only_after_failover = false;                  // deprecated, not acted upon

  friend bool operator==(const Failover&, const Failover&) = default;
};

// One PostgreSQL connection's parameters. Empty strings and port 0 mean
// "not set": libpq's own defaults (and PG* environment variables) apply.
struct DatabaseConnection {
  std::string host;
  int port = 0;
  std::string user;
  std::string password;
  std::string dbname;
  std::string sslmode;  // disable|allow|prefer|require|verify-ca|verify-full; empty = libpq's "prefer"
  std::string sslcert;
  std::string sslkey;
  std::string sslrootcert;

  friend bool operator==(const DatabaseConnection&, const DatabaseConnection&) = default;
};

// [database] and [database.session_pooled].
struct Database : DatabaseConnection {
  // The connection used for LISTEN/NOTIFY (a direct or session-pooled
  // connection when [database] points at a transaction-pooling PgBouncer).
  // Each unset field falls back to [database]; see SessionConnection().
  DatabaseConnection session_pooled;
  // Deprecated spellings of session_pooled.host / session_pooled.port.
  std::string host_no_proxy;
  int port_no_proxy = 0;

  // The parameters for ordinary queries: [database] itself.
  DatabaseConnection MainConnection() const { return *this; }
  // The parameters for the LISTEN connection, Praefect's fallback rules:
  // session_pooled.X, then (host/port only) X_no_proxy, then [database] X.
  DatabaseConnection SessionConnection() const;

  friend bool operator==(const Database&, const Database&) = default;
};

// [reconciliation]
struct Reconciliation {
  Duration scheduling_interval = std::chrono::minutes(5);  // 0 (or less): automatic reconciliation off
  std::vector<double> histogram_buckets = DefaultHistogramBuckets();

  friend bool operator==(const Reconciliation&, const Reconciliation&) = default;
};

// [replication]
struct Replication {
  uint32_t batch_size = 10;
  uint32_t parallel_storage_processing_workers = 1;

  friend bool operator==(const Replication&, const Replication&) = default;
};

// [background_verification]
struct BackgroundVerification {
  Duration verification_interval = std::chrono::hours(168);  // 0 (or less): verifier off
  bool delete_invalid_records = true;

  friend bool operator==(const BackgroundVerification&, const BackgroundVerification&) = default;
};

// [content_verification] (praefect's own, not Praefect's): the comparison
// of the checksums of replicas at the same generation.
struct ContentVerification {
  uint32_t repositories_per_minute = 60;  // per praefect; 0: content verification off

  friend bool operator==(const ContentVerification&, const ContentVerification&) = default;
};

// [repositories_cleanup]
struct RepositoriesCleanup {
  Duration check_interval = std::chrono::minutes(30);
  Duration run_interval = std::chrono::hours(24);  // 0: cleanup off
  uint32_t repositories_in_batch = 16;

  friend bool operator==(const RepositoriesCleanup&, const RepositoriesCleanup&) = default;
};

// [backchannel] (praefect's own): node connections as Praefect v16 dials
// Gitaly: yamux over the connection, praefect's calls on its first stream,
// and the nodes' votes (RefTransaction) on the streams they open back; with
// it, transactional writes are strongly consistent. Off by default for now:
// the backchannel's layer copies every byte of the data path twice
// (bench/README.md, "Reference transactions"); Praefect always does it.
// [yamux] applies.
struct Backchannel {
  bool enabled = false;

  friend bool operator==(const Backchannel&, const Backchannel&) = default;
};

// [yamux]: the sessions of [backchannel]; accepted and checked, not acted
// upon without it.
struct Yamux {
  uint32_t maximum_stream_window_size_bytes = 262144;
  uint32_t accept_backlog = 256;

  friend bool operator==(const Yamux&, const Yamux&) = default;
};

// [limits] (project extension): what a client may send.
struct Limits {
  // Largest request message accepted from a client, in bytes; a larger one
  // fails its call with RESOURCE_EXHAUSTED. grpc-go's default receive
  // limit, which Gitaly and Praefect keep: a client that Gitaly accepts,
  // praefect accepts.
  uint32_t max_message_bytes = 4 * 1024 * 1024;

  friend bool operator==(const Limits&, const Limits&) = default;
};

// [[virtual_storage.node]]
struct Node {
  std::string storage;   // the Gitaly storage name on that node
  std::string address;   // tcp://host:port, tls://host:port, unix:/path or dns:...
  std::string token;     // what praefect signs its calls to the node with
  bool primary = false;  // legacy single-primary mode only

  friend bool operator==(const Node&, const Node&) = default;
};

// [[virtual_storage]]
struct VirtualStorage {
  std::string name;
  std::vector<Node> nodes;
  // New repositories get this many replicas; 0 (or less): every node.
  int default_replication_factor = 0;

  friend bool operator==(const VirtualStorage&, const VirtualStorage&) = default;
};

// [[registry.method]] (project extension): one entry of the project-owned
// method table, loaded verbatim; the protoregistry module validates it.
struct MethodEntry {
  std::string name;  // "/gitaly.RepositoryService/Foo"
  std::string operation;
  std::string scope;
  std::string target_repository_field;
  std::string additional_repository_field;
  std::string storage_field;
  std::string shape;
  std::string file;  // where the entry was written, for the validator's messages
  int line = 0;

  friend bool operator==(const MethodEntry&, const MethodEntry&) = default;
};

struct Config {
  std::string listen_addr;
  std::string tls_listen_addr;
  std::string socket_path;
  std::string prometheus_listen_addr;
  Duration graceful_stop_timeout = std::chrono::minutes(1);
  bool prometheus_exclude_database_from_default_metrics = true;
  bool memory_queue_enabled = false;
  // i_understand_my_election_strategy_is_unsupported_and_will_be_removed_without_warning
  bool allow_legacy_electors = false;
  // Project extension: INI file with the secrets (see config/secrets.h).
  std::string secrets_file;

  Auth auth;
  Tls tls;
  Logging logging;
  Sentry sentry;
  Prometheus prometheus;
  Failover failover;
  Database database;
  Reconciliation reconciliation;
  Replication replication;
  BackgroundVerification background_verification;
  RepositoriesCleanup repositories_cleanup;
  ContentVerification content_verification;
  Backchannel backchannel;
  Yamux yamux;
  Limits limits;
  std::vector<VirtualStorage> virtual_storages;
  std::vector<MethodEntry> registry_methods;

  // The virtual storage called `name`, or nullptr.
  const VirtualStorage* FindVirtualStorage(std::string_view name) const;

  friend bool operator==(const Config&, const Config&) = default;
};

}  // namespace praefect::config
