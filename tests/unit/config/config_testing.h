#pragma once

// Helpers shared by the config tests: a flat `key = value` view of a Config
// (what testdata/*.expect files compare against), an .expect file checker,
// and temporary files.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "config/load.h"
#include "test_support.h"

namespace praefect::config::testing {

inline std::string Q(const std::string& s) { return "\"" + s + "\""; }

inline std::string Numbers(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v[i]);
    out += (i ? ", " : "") + std::string(buf);
  }
  return out + "]";
}

inline std::string B(bool b) { return b ? "true" : "false"; }

inline void Connection(const std::string& prefix, const DatabaseConnection& c,
                       std::map<std::string, std::string>* m) {
  (*m)[prefix + "host"] = Q(c.host);
  (*m)[prefix + "port"] = std::to_string(c.port);
  (*m)[prefix + "user"] = Q(c.user);
  (*m)[prefix + "password"] = Q(c.password);
  (*m)[prefix + "dbname"] = Q(c.dbname);
  (*m)[prefix + "sslmode"] = Q(c.sslmode);
  (*m)[prefix + "sslcert"] = Q(c.sslcert);
  (*m)[prefix + "sslkey"] = Q(c.sslkey);
  (*m)[prefix + "sslrootcert"] = Q(c.sslrootcert);
}

// Every field of `c` under its config.toml key path.
inline std::map<std::string, std::string> Flatten(const Config& c) {
  std::map<std::string, std::string> m;
  m["listen_addr"] = Q(c.listen_addr);
  m["tls_listen_addr"] = Q(c.tls_listen_addr);
  m["socket_path"] = Q(c.socket_path);
  m["prometheus_listen_addr"] = Q(c.prometheus_listen_addr);
  m["graceful_stop_timeout"] = FormatGoDuration(c.graceful_stop_timeout);
  m["prometheus_exclude_database_from_default_metrics"] =
      B(c.prometheus_exclude_database_from_default_metrics);
  m["memory_queue_enabled"] = B(c.memory_queue_enabled);
  m["allow_legacy_electors"] = B(c.allow_legacy_electors);
  m["secrets_file"] = Q(c.secrets_file);
  m["auth.token"] = Q(c.auth.token);
  m["auth.transitioning"] = B(c.auth.transitioning);
  m["tls.certificate_path"] = Q(c.tls.certificate_path);
  m["tls.key_path"] = Q(c.tls.key_path);
  m["logging.format"] = std::string(LogFormatName(c.logging.format));
  m["logging.level"] = std::string(LogLevelName(c.logging.level));
  m["sentry.sentry_dsn"] = Q(c.sentry.dsn);
  m["prometheus.scrape_timeout"] = FormatGoDuration(c.prometheus.scrape_timeout);
  m["prometheus.grpc_latency_buckets"] = Numbers(c.prometheus.grpc_latency_buckets);
  m["failover.enabled"] = B(c.failover.enabled);
  m["failover.election_strategy"] = std::string(ElectionStrategyName(c.failover.election_strategy));
  m["failover.bootstrap_interval"] = FormatGoDuration(c.failover.bootstrap_interval);
  m["failover.monitor_interval"] = FormatGoDuration(c.failover.monitor_interval);
  m["failover.quorum_window"] = FormatGoDuration(c.failover.quorum_window);
  m["failover.read_only_after_failover"] = B(c.failover.read_only_after_failover);
  Connection("database.", c.database, &m);
  Connection("database.session_pooled.", c.database.session_pooled, &m);
  Connection("database.session_connection.", c.database.SessionConnection(), &m);
  m["reconciliation.scheduling_interval"] = FormatGoDuration(c.reconciliation.scheduling_interval);
  m["reconciliation.histogram_buckets"] = Numbers(c.reconciliation.histogram_buckets);
  m["replication.batch_size"] = std::to_string(c.replication.batch_size);
  m["replication.parallel_storage_processing_workers"] =
      std::to_string(c.replication.parallel_storage_processing_workers);
  m["background_verification.verification_interval"] =
      FormatGoDuration(c.background_verification.verification_interval);
  m["background_verification.delete_invalid_records"] = B(c.background_verification.delete_invalid_records);
  m["repositories_cleanup.check_interval"] = FormatGoDuration(c.repositories_cleanup.check_interval);
  m["repositories_cleanup.run_interval"] = FormatGoDuration(c.repositories_cleanup.run_interval);
  m["repositories_cleanup.repositories_in_batch"] =
      std::to_string(c.repositories_cleanup.repositories_in_batch);
  m["yamux.maximum_stream_window_size_bytes"] = std::to_string(c.yamux.maximum_stream_window_size_bytes);
  m["yamux.accept_backlog"] = std::to_string(c.yamux.accept_backlog);
  m["virtual_storage.count"] = std::to_string(c.virtual_storages.size());
  for (size_t i = 0; i < c.virtual_storages.size(); ++i) {
    const VirtualStorage& vs = c.virtual_storages[i];
    std::string p = "virtual_storage[" + std::to_string(i) + "].";
    m[p + "name"] = Q(vs.name);
    m[p + "default_replication_factor"] = std::to_string(vs.default_replication_factor);
    m[p + "node.count"] = std::to_string(vs.nodes.size());
    for (size_t j = 0; j < vs.nodes.size(); ++j) {
      std::string n = p + "node[" + std::to_string(j) + "].";
      m[n + "storage"] = Q(vs.nodes[j].storage);
      m[n + "address"] = Q(vs.nodes[j].address);
      m[n + "token"] = Q(vs.nodes[j].token);
      m[n + "primary"] = B(vs.nodes[j].primary);
    }
  }
  m["registry.method.count"] = std::to_string(c.registry_methods.size());
  for (size_t i = 0; i < c.registry_methods.size(); ++i) {
    const MethodEntry& e = c.registry_methods[i];
    std::string p = "registry.method[" + std::to_string(i) + "].";
    m[p + "name"] = Q(e.name);
    m[p + "operation"] = Q(e.operation);
    m[p + "scope"] = Q(e.scope);
    m[p + "target_repository_field"] = Q(e.target_repository_field);
    m[p + "additional_repository_field"] = Q(e.additional_repository_field);
    m[p + "storage_field"] = Q(e.storage_field);
    m[p + "shape"] = Q(e.shape);
    m[p + "line"] = std::to_string(e.line);
  }
  return m;
}

// cmocka truncates long failure messages: print the whole text first.
#define PRAEFECT_FAIL(...)                                   \
  do {                                                       \
    std::fprintf(stderr, __VA_ARGS__);                       \
    std::fprintf(stderr, "\n");                              \
    fail_msg("%s", "config expectation failed (see above)"); \
  } while (0)

// The config tests say check_that; it is expect_that (test_support.h).
#define check_that(cond, what) expect_that(cond, what)

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_msg("cannot read %s", path.c_str());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string Dump(const LoadResult& r) {
  std::string out;
  for (const Problem& p : r.problems) out += "  " + FormatProblemForHumans(p) + "\n";
  return out;
}

// True when some problem has this severity, key, position and a message containing `text`.
inline bool HasProblem(const LoadResult& r, Severity severity, const std::string& key, int line, int column,
                       const std::string& text) {
  for (const Problem& p : r.problems) {
    if (p.severity == severity && KeyPathToString(p.key) == key && p.line == line && p.column == column &&
        p.message.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// Checks `r` against an .expect file. Lines:
//   errors N | warnings N                      exact counts
//   error|warning <key or -> <line>:<col> <text>  such a problem exists (message contains text)
//   <key> = <value>                            Flatten(config)[key] == value
//   # comment
inline void CheckExpectations(const LoadResult& r, const std::string& expect_path) {
  std::istringstream lines(ReadText(expect_path));
  std::map<std::string, std::string> flat;
  if (r.config) flat = Flatten(*r.config);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string first;
    words >> first;
    std::string where = expect_path + ":" + std::to_string(number) + ": ";
    if (first == "errors" || first == "warnings") {
      int want = -1;
      words >> want;
      int got = first == "errors" ? r.error_count() : r.warning_count();
      if (got != want)
        PRAEFECT_FAIL("%sexpected %d %s, got %d:\n%s", where.c_str(), want, first.c_str(), got,
                      Dump(r).c_str());
    } else if (first == "error" || first == "warning") {
      std::string key, pos;
      words >> key >> pos;
      int l = 0, c = 0;
      std::sscanf(pos.c_str(), "%d:%d", &l, &c);
      std::string text;
      std::getline(words >> std::ws, text);
      if (key == "-") key.clear();
      Severity s = first == "error" ? Severity::kError : Severity::kWarning;
      if (!HasProblem(r, s, key, l, c, text)) {
        PRAEFECT_FAIL("%sexpected %s at %s %s containing \"%s\", got:\n%s", where.c_str(), first.c_str(),
                      key.c_str(), pos.c_str(), text.c_str(), Dump(r).c_str());
      }
    } else {
      std::string eq;
      words >> eq;
      std::string value;
      std::getline(words >> std::ws, value);
      if (!r.config)
        PRAEFECT_FAIL("%sexpected a config for %s, got errors:\n%s", where.c_str(), first.c_str(),
                      Dump(r).c_str());
      auto it = flat.find(first);
      if (it == flat.end()) PRAEFECT_FAIL("%sno such field %s", where.c_str(), first.c_str());
      if (it->second != value) {
        PRAEFECT_FAIL("%s%s: expected %s, got %s", where.c_str(), first.c_str(), value.c_str(),
                      it->second.c_str());
      }
    }
  }
}

// A fresh directory under $TMPDIR (or /tmp); the caller removes it.
inline std::string MakeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/praefect-config-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) PRAEFECT_FAIL("mkdtemp failed");
  return std::string(buf.data());
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) PRAEFECT_FAIL("cannot write %s", path.c_str());
}

}  // namespace praefect::config::testing
