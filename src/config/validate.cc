// Semantic checks over the decoded tree: every problem is reported, none
// stops the others. Messages start with Gitaly's cfgerror words ("not set",
// "not in range", "bad order", ...) where one fits, then say what was
// expected and what was found.
#include <cstdio>

#include "config/address.h"
#include "config/internal.h"

namespace praefect::config::internal {

void ValidateVirtualStorages(const Decoded& d, Diagnostics* diag);  // validate_storage.cc

namespace {

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string FormatNumber(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

void Error(Diagnostics* diag, const KeyPath& key, std::string message) {
  diag->Error(key, diag->Nearest(key), std::move(message));
}

void Warning(Diagnostics* diag, const KeyPath& key, std::string message) {
  diag->Warning(key, diag->Nearest(key), std::move(message));
}

void AtLeast(Diagnostics* diag, const KeyPath& key, int64_t value, int64_t min) {
  if (value >= min) return;
  Error(diag, key,
        "not in range: expected " + std::to_string(min) + " or more, found " + std::to_string(value));
}

void NotNegative(Diagnostics* diag, const KeyPath& key, Duration value) {
  if (value >= Duration(0)) return;
  Error(diag, key, "not in range: expected a duration of 0 or more, found " + FormatGoDuration(value));
}

void Listeners(const Config& c, Diagnostics* diag) {
  if (c.listen_addr.empty() && c.socket_path.empty() && c.tls_listen_addr.empty()) {
    // Praefect's message, word for word.
    diag->Error({}, {}, "none of \"socket_path\", \"listen_addr\" or \"tls_listen_addr\" is set");
  }
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"listen_addr", &c.listen_addr},
                                   {"tls_listen_addr", &c.tls_listen_addr},
                                   {"prometheus_listen_addr", &c.prometheus_listen_addr}}) {
    if (value->empty()) continue;
    if (Status st = CheckListenAddress(*value); !st.ok()) Error(diag, {key}, st.message());
  }
}

void TlsAndAuth(const Config& c, Diagnostics* diag) {
  const Tls& t = c.tls;
  bool has_key = !t.key_path.empty() || !t.key.empty();
  if (!t.key_path.empty() && !t.key.empty()) {
    Error(diag, {"tls", "key"}, "expected only one of tls.key_path and tls.key, found both");
  }
  if (!t.certificate_path.empty() && !has_key) {
    Error(diag, {"tls", "key_path"},
          "not set: tls.certificate_path = " + Quote(t.certificate_path) +
              " needs the path of its private key (or the key as the systemd credential tls-key)");
  }
  if (t.certificate_path.empty() && has_key) {
    KeyPath key = t.key_path.empty() ? KeyPath{"tls", "key"} : KeyPath{"tls", "key_path"};
    std::string which = t.key_credential.empty() ? KeyPathToString(key)
                                                 : "the systemd credential " + Quote(t.key_credential);
    Error(diag, {"tls", "certificate_path"},
          "not set: a TLS key (" + which + ") is given but no certificate to go with it; set "
          "tls.certificate_path, or remove the key");
  }
  if (!c.tls_listen_addr.empty() && t.certificate_path.empty() && !has_key) {
    Error(diag, {"tls", "certificate_path"},
          "not set: tls_listen_addr = " + Quote(c.tls_listen_addr) +
              " needs [tls] certificate_path and key_path");
  }
  if (c.tls_listen_addr.empty() && !t.certificate_path.empty() && has_key) {
    Warning(diag, {"tls"}, "not used: a certificate is configured but tls_listen_addr is not set");
  }
  if (c.auth.transitioning && c.auth.token.empty()) {
    Warning(diag, {"auth", "transitioning"},
            "has no effect: auth.token is empty, so every call is accepted anyway");
  }
  if (!c.auth.token.empty() && c.auth.token.find_first_not_of(" \t\r\n") == std::string::npos) {
    Error(diag, {"auth", "token"}, "blank or empty: expected a token, found only whitespace");
  }
}

void Buckets(Diagnostics* diag, const KeyPath& key, const std::vector<double>& buckets) {
  for (size_t i = 1; i < buckets.size(); ++i) {
    if (buckets[i] > buckets[i - 1]) continue;
    Error(diag, key,
          "bad order: expected strictly increasing bucket bounds, found " + FormatNumber(buckets[i]) +
              " after " + FormatNumber(buckets[i - 1]) + " (element [" + std::to_string(i) + "])");
    return;
  }
}

void Intervals(const Config& c, Diagnostics* diag) {
  NotNegative(diag, {"graceful_stop_timeout"}, c.graceful_stop_timeout);
  NotNegative(diag, {"prometheus", "scrape_timeout"}, c.prometheus.scrape_timeout);
  Buckets(diag, {"prometheus", "grpc_latency_buckets"}, c.prometheus.grpc_latency_buckets);
  Buckets(diag, {"reconciliation", "histogram_buckets"}, c.reconciliation.histogram_buckets);
  if (c.reconciliation.scheduling_interval < Duration(0)) {
    Warning(diag, {"reconciliation", "scheduling_interval"},
            "a negative interval switches automatic reconciliation off; write \"0\" to say so");
  }
  if (c.background_verification.verification_interval < Duration(0)) {
    Warning(diag, {"background_verification", "verification_interval"},
            "a negative interval switches background verification off; write \"0\" to say so");
  }
  AtLeast(diag, {"replication", "batch_size"}, c.replication.batch_size, 1);
  AtLeast(diag, {"replication", "parallel_storage_processing_workers"},
          c.replication.parallel_storage_processing_workers, 1);
  const RepositoriesCleanup& rc = c.repositories_cleanup;
  if (rc.run_interval != Duration(0)) {  // 0 switches the cleanup off; then nothing else matters
    for (const auto& [key, value] : {std::pair<const char*, Duration>{"check_interval", rc.check_interval},
                                     {"run_interval", rc.run_interval}}) {
      if (value >= std::chrono::minutes(1)) continue;
      Error(diag, {"repositories_cleanup", key},
            "not in range: expected at least 1m0s (shorter intervals load the database), found " +
                FormatGoDuration(value));
    }
    AtLeast(diag, {"repositories_cleanup", "repositories_in_batch"}, rc.repositories_in_batch, 1);
  }
}

void FailoverSettings(const Config& c, Diagnostics* diag) {
  const Failover& f = c.failover;
  NotNegative(diag, {"failover", "bootstrap_interval"}, f.bootstrap_interval);
  NotNegative(diag, {"failover", "monitor_interval"}, f.monitor_interval);
  NotNegative(diag, {"failover", "error_threshold_window"}, f.error_threshold_window);
  if (f.quorum_window < std::chrono::seconds(2) || f.quorum_window > std::chrono::minutes(10))
    Error(diag, {"failover", "quorum_window"},
          "not in range: expected 2s to 10m0s (each praefect checks the nodes every second, so a shorter "
          "window loses votes between checks), found " + FormatGoDuration(f.quorum_window));
  if (!f.enabled) return;
  if (f.election_strategy != ElectionStrategy::kPerRepository) {
    Warning(diag, {"failover", "election_strategy"},
            "not supported at serve time: praefect elects primaries per repository only; \"" +
                std::string(ElectionStrategyName(f.election_strategy)) +
                "\" is accepted here but `praefect serve` refuses it (expected \"per_repository\")");
  }
  bool window = f.error_threshold_window != Duration(0);
  bool writes = f.write_error_threshold_count != 0;
  bool reads = f.read_error_threshold_count != 0;
  if (!window && !writes && !reads) return;
  if (!window)
    Error(diag, {"failover", "error_threshold_window"}, "not set: the error thresholds need a window");
  if (!writes)
    Error(diag, {"failover", "write_error_threshold_count"},
          "not set: expected a count of 1 or more with the other error thresholds");
  if (!reads)
    Error(diag, {"failover", "read_error_threshold_count"},
          "not set: expected a count of 1 or more with the other error thresholds");
  if (window && writes && reads) {
    Warning(diag, {"failover", "error_threshold_window"},
            "not acted upon: error-threshold failover belongs to the legacy electors; praefect's "
            "per-repository elections use health checks only");
  }
}

void Port(Diagnostics* diag, const KeyPath& key, int port) {
  if (port >= 0 && port <= 65535) return;
  Error(diag, key, "not in range: expected a TCP port from 1 to 65535, found " + std::to_string(port));
}

// The largest [limits] max_message_bytes: a request message is held whole
// in memory, and gRPC's own ceiling is 2 GiB.
constexpr uint32_t kMaxMessageBytesLimit = 1u << 30;

void DatabaseAndMisc(const Config& c, Diagnostics* diag) {
  Port(diag, {"database", "port"}, c.database.port);
  Port(diag, {"database", "port_no_proxy"}, c.database.port_no_proxy);
  Port(diag, {"database", "session_pooled", "port"}, c.database.session_pooled.port);
  if (c.yamux.maximum_stream_window_size_bytes < 262144) {
    Error(diag, {"yamux", "maximum_stream_window_size_bytes"},
          "not in range: expected 262144 or more (yamux's minimum), found " +
              std::to_string(c.yamux.maximum_stream_window_size_bytes));
  }
  AtLeast(diag, {"yamux", "accept_backlog"}, c.yamux.accept_backlog, 1);
  if (c.limits.max_message_bytes < 1024 || c.limits.max_message_bytes > kMaxMessageBytesLimit) {
    Error(diag, {"limits", "max_message_bytes"},
          "not in range: expected a size in bytes from 1024 to " + std::to_string(kMaxMessageBytesLimit) +
              " (1 GiB), found " + std::to_string(c.limits.max_message_bytes));
  }
  if (c.memory_queue_enabled) {
    Warning(diag, {"memory_queue_enabled"},
            "the replication queue is kept in memory: queued replication jobs are lost when praefect "
            "restarts and other praefects cannot see them; use it for tests only");
  }
}

}  // namespace

void Validate(const Decoded& d, Diagnostics* diag) {
  const Config& c = d.config;
  Listeners(c, diag);
  TlsAndAuth(c, diag);
  Intervals(c, diag);
  FailoverSettings(c, diag);
  DatabaseAndMisc(c, diag);
  ValidateVirtualStorages(d, diag);
}

}  // namespace praefect::config::internal
