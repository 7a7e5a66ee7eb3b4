// config.toml sections → Config fields. Only types and spellings are checked
// here; what values make sense together is validate.cc's business.
#include <initializer_list>
#include <utility>

#include "config/toml_reader.h"

namespace praefect::config::internal {
namespace {

template <typename E>
using Names = std::initializer_list<std::pair<std::string_view, E>>;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string ListNames(std::initializer_list<std::string_view> names) {
  std::string out;
  size_t i = 0;
  for (std::string_view name : names) {
    if (i > 0) out += (i + 1 == names.size()) ? " or " : ", ";
    out += QuoteForMessage(name);
    ++i;
  }
  return out;
}

// Reads `key` as one of `names` (exact, or case-insensitive as logrus does).
template <typename E>
void Enum(TableReader& r, std::string_view key, Names<E> names, std::initializer_list<std::string_view> shown,
          bool case_insensitive, E* out) {
  std::string text;
  if (!r.Has(key)) return;
  r.String(key, &text);
  if (text.empty()) return;  // "" is what Praefect reads as "use the default"
  std::string wanted = case_insensitive ? Lower(text) : text;
  for (const auto& [name, value] : names) {
    if (wanted == name) {
      *out = value;
      return;
    }
  }
  r.diag()->Error(r.PathOf(key), r.PosOf(key),
                  "expected one of " + ListNames(shown) + ", found " + QuoteForMessage(text));
}

void SslMode(TableReader& r, std::string* out) {
  r.String("sslmode", out);
  static constexpr std::string_view kModes[] = {"disable", "allow",     "prefer",
                                                "require", "verify-ca", "verify-full"};
  if (out->empty()) return;
  for (std::string_view mode : kModes) {
    if (*out == mode) return;
  }
  r.diag()->Error(r.PathOf("sslmode"), r.PosOf("sslmode"),
                  "expected one of \"disable\", \"allow\", \"prefer\", \"require\", \"verify-ca\" or "
                  "\"verify-full\" (libpq's sslmode), found " +
                      QuoteForMessage(*out));
}

void Connection(TableReader& r, DatabaseConnection* c) {
  r.String("host", &c->host);
  r.Int("port", &c->port);
  r.String("user", &c->user);
  r.Secret("password", &c->password);
  r.String("dbname", &c->dbname);
  SslMode(r, &c->sslmode);
  r.String("sslcert", &c->sslcert);
  r.String("sslkey", &c->sslkey);
  r.String("sslrootcert", &c->sslrootcert);
}

void DatabaseSection(TableReader& root, Database* db) {
  const toml::table* t = root.Table("database");
  if (t == nullptr) return;
  TableReader r(*t, {"database"}, root.diag());
  Connection(r, db);
  for (std::string_view key : {"host_no_proxy", "port_no_proxy"}) {
    if (r.Has(key)) {
      r.diag()->Warning(r.PathOf(key), r.PosOf(key),
                        "deprecated: write [database.session_pooled] " + std::string(key.substr(0, 4)) +
                            " instead; still used as its fallback");
    }
  }
  r.String("host_no_proxy", &db->host_no_proxy);
  r.Int("port_no_proxy", &db->port_no_proxy);
  if (const toml::table* sp = r.Table("session_pooled")) {
    TableReader s(*sp, {"database", "session_pooled"}, root.diag());
    Connection(s, &db->session_pooled);
    s.Finish();
  }
  r.Finish();
}

void FailoverSection(TableReader& root, Failover* f) {
  const toml::table* t = root.Table("failover");
  if (t == nullptr) return;
  TableReader r(*t, {"failover"}, root.diag());
  r.Bool("enabled", &f->enabled);
  Enum<ElectionStrategy>(r, "election_strategy",
                         {{"per_repository", ElectionStrategy::kPerRepository},
                          {"sql", ElectionStrategy::kSql},
                          {"local", ElectionStrategy::kLocal}},
                         {"per_repository", "sql", "local"}, false, &f->election_strategy);
  r.GoDuration("error_threshold_window", &f->error_threshold_window);
  r.Uint32("write_error_threshold_count", &f->write_error_threshold_count);
  r.Uint32("read_error_threshold_count", &f->read_error_threshold_count);
  r.GoDuration("bootstrap_interval", &f->bootstrap_interval);
  r.GoDuration("monitor_interval", &f->monitor_interval);
  r.GoDuration("quorum_window", &f->quorum_window);
  if (r.Has("read_only_after_failover")) {
    r.Bool("read_only_after_failover", &f->read_only_after_failover);
    r.diag()->Warning(r.PathOf("read_only_after_failover"), r.PosOf("read_only_after_failover"),
                      "deprecated: Praefect removed read-only mode after failover; praefect ignores "
                      "it (outdated replicas are never served, see `praefect dataloss`)");
  }
  r.Finish();
}

void LoggingSection(TableReader& root, Logging* l) {
  const toml::table* t = root.Table("logging");
  if (t == nullptr) return;
  TableReader r(*t, {"logging"}, root.diag());
  Enum<LogFormat>(r, "format", {{"text", LogFormat::kText}, {"json", LogFormat::kJson}}, {"text", "json"},
                  false, &l->format);
  Enum<LogLevel>(r, "level",
                 {{"trace", LogLevel::kTrace},
                  {"debug", LogLevel::kDebug},
                  {"info", LogLevel::kInfo},
                  {"warn", LogLevel::kWarn},
                  {"warning", LogLevel::kWarn},
                  {"error", LogLevel::kError},
                  {"fatal", LogLevel::kFatal},
                  {"panic", LogLevel::kPanic}},
                 {"trace", "debug", "info", "warn", "error", "fatal", "panic"}, true, &l->level);
  Enum<AccessLogLevel>(r, "access_log_level",
                       {{"off", AccessLogLevel::kOff},
                        {"trace", AccessLogLevel::kTrace},
                        {"debug", AccessLogLevel::kDebug},
                        {"info", AccessLogLevel::kInfo},
                        {"warn", AccessLogLevel::kWarn},
                        {"warning", AccessLogLevel::kWarn},
                        {"error", AccessLogLevel::kError}},
                       {"off", "trace", "debug", "info", "warn", "error"}, true, &l->access_log_level);
  r.String("dir", &l->dir);
  if (!l->dir.empty()) {
    r.diag()->Warning(r.PathOf("dir"), r.PosOf("dir"),
                      "not acted upon: praefect logs to the journal (or stderr), not to a directory");
  }
  for (std::string_view key : {"sentry_dsn", "ruby_sentry_dsn", "sentry_environment"}) {
    r.Ignore(key, r.IsSet(key),
             "deprecated: Praefect moved Sentry settings to [sentry]; praefect does not report to Sentry and "
             "ignores it");
  }
  r.Finish();
}

void SimpleSections(TableReader& root, Config* c) {
  Diagnostics* diag = root.diag();
  if (const toml::table* t = root.Table("auth")) {
    TableReader r(*t, {"auth"}, diag);
    r.Secret("token", &c->auth.token);
    r.Bool("transitioning", &c->auth.transitioning);
    r.Finish();
  }
  if (const toml::table* t = root.Table("tls")) {
    TableReader r(*t, {"tls"}, diag);
    r.String("certificate_path", &c->tls.certificate_path);
    r.String("key_path", &c->tls.key_path);
    r.Secret("key", &c->tls.key);
    r.Finish();
  }
  if (const toml::table* t = root.Table("sentry")) {
    TableReader r(*t, {"sentry"}, diag);
    r.String("sentry_dsn", &c->sentry.dsn);
    r.String("sentry_environment", &c->sentry.environment);
    if (!c->sentry.dsn.empty() || !c->sentry.environment.empty()) {
      diag->Warning({"sentry"}, root.PosOf("sentry"),
                    "not acted upon: praefect does not report errors to Sentry");
    }
    r.Finish();
  }
  if (const toml::table* t = root.Table("prometheus")) {
    TableReader r(*t, {"prometheus"}, diag);
    r.GoDuration("scrape_timeout", &c->prometheus.scrape_timeout);
    r.Numbers("grpc_latency_buckets", &c->prometheus.grpc_latency_buckets);
    r.Finish();
  }
  if (const toml::table* t = root.Table("reconciliation")) {
    TableReader r(*t, {"reconciliation"}, diag);
    r.GoDuration("scheduling_interval", &c->reconciliation.scheduling_interval);
    r.Numbers("histogram_buckets", &c->reconciliation.histogram_buckets);
    r.Finish();
  }
  if (const toml::table* t = root.Table("replication")) {
    TableReader r(*t, {"replication"}, diag);
    r.Uint32("batch_size", &c->replication.batch_size);
    r.Uint32("parallel_storage_processing_workers", &c->replication.parallel_storage_processing_workers);
    r.Finish();
  }
  if (const toml::table* t = root.Table("background_verification")) {
    TableReader r(*t, {"background_verification"}, diag);
    r.GoDuration("verification_interval", &c->background_verification.verification_interval);
    r.Bool("delete_invalid_records", &c->background_verification.delete_invalid_records);
    r.Finish();
  }
  if (const toml::table* t = root.Table("repositories_cleanup")) {
    TableReader r(*t, {"repositories_cleanup"}, diag);
    r.GoDuration("check_interval", &c->repositories_cleanup.check_interval);
    r.GoDuration("run_interval", &c->repositories_cleanup.run_interval);
    r.Uint32("repositories_in_batch", &c->repositories_cleanup.repositories_in_batch);
    r.Finish();
  }
  if (const toml::table* t = root.Table("limits")) {
    TableReader r(*t, {"limits"}, diag);
    r.Uint32("max_message_bytes", &c->limits.max_message_bytes);
    r.Finish();
  }
  if (const toml::table* t = root.Table("content_verification")) {
    TableReader r(*t, {"content_verification"}, diag);
    r.Uint32("repositories_per_minute", &c->content_verification.repositories_per_minute);
    r.Finish();
  }
  if (const toml::table* t = root.Table("backchannel")) {
    TableReader r(*t, {"backchannel"}, diag);
    r.Bool("enabled", &c->backchannel.enabled);
    r.Finish();
  }
  if (const toml::table* t = root.Table("yamux")) {
    TableReader r(*t, {"yamux"}, diag);
    r.Uint32("maximum_stream_window_size_bytes", &c->yamux.maximum_stream_window_size_bytes);
    r.Uint32("accept_backlog", &c->yamux.accept_backlog);
    if (!t->empty() && !c->backchannel.enabled) {
      diag->Warning({"yamux"}, root.PosOf("yamux"),
                    "not acted upon: node connections are multiplexed with yamux only with [backchannel] enabled = true");
    }
    r.Finish();
  }
}

void LegacyTopLevelKeys(TableReader& r, Config* c) {
  Diagnostics* diag = r.diag();
  if (r.Has("failover_enabled")) {
    // Unlike Praefect, whose default made `failover_enabled = false` a no-op,
    // false keeps its 2019 meaning: the single-primary mode, where the node
    // marked primary = true takes every write.
    r.Bool("failover_enabled", &c->failover.enabled);
    diag->Warning({"failover_enabled"}, r.PosOf("failover_enabled"),
                  "deprecated: write `enabled` in a [failover] section instead");
  }
  r.Ignore("postgres_queue_enabled", true,
           "deprecated: the replication queue is always kept in PostgreSQL; remove this key");
  r.Ignore("distributed_reads_enabled", true,
           "deprecated: reads are always distributed over up-to-date replicas; remove this key");
  if (r.Has("config_command")) {
    std::string command;
    r.String("config_command", &command);
    if (!command.empty()) {
      diag->Error(
          {"config_command"}, r.PosOf("config_command"),
          "not supported: praefect does not run a command to complete its configuration; give "
          "secrets with systemd credentials or `secrets_file` instead (see praefect.toml(5)), found " +
              QuoteForMessage(command));
    }
  }
  if (r.Has("gitlab")) {
    r.Ignore("gitlab", true, "not acted upon: Praefect does not use a [gitlab] section either; remove it");
  }
}

}  // namespace

void Decode(const toml::table& root, Decoded* out, Diagnostics* diag) {
  Config* c = &out->config;
  TableReader r(root, {}, diag);
  r.String("listen_addr", &c->listen_addr);
  r.String("tls_listen_addr", &c->tls_listen_addr);
  r.String("socket_path", &c->socket_path);
  r.String("prometheus_listen_addr", &c->prometheus_listen_addr);
  r.GoDuration("graceful_stop_timeout", &c->graceful_stop_timeout);
  r.Bool("prometheus_exclude_database_from_default_metrics",
         &c->prometheus_exclude_database_from_default_metrics);
  r.Bool("memory_queue_enabled", &c->memory_queue_enabled);
  r.Bool("i_understand_my_election_strategy_is_unsupported_and_will_be_removed_without_warning",
         &c->allow_legacy_electors);
  r.String("secrets_file", &c->secrets_file);
  SimpleSections(r, c);
  LoggingSection(r, &c->logging);
  // The 2019 top-level failover_enabled first: a [failover] enabled, the
  // modern spelling, overrides it when both are written.
  LegacyTopLevelKeys(r, c);
  FailoverSection(r, &c->failover);
  DatabaseSection(r, &c->database);
  DecodeVirtualStorages(r, out);
  DecodeRegistry(r, out);
  r.Finish();
}

}  // namespace praefect::config::internal
