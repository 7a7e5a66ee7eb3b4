#include "server/reload.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "log/access_log.h"
#include "log/log.h"
#include "systemd/journal.h"
#include "systemd/notify.h"

namespace praefect::server {
namespace {

log::Level ToLogLevel(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::kTrace: return log::Level::kTrace;
    case config::LogLevel::kDebug: return log::Level::kDebug;
    case config::LogLevel::kInfo: return log::Level::kInfo;
    case config::LogLevel::kWarn: return log::Level::kWarn;
    case config::LogLevel::kError: return log::Level::kError;
    case config::LogLevel::kFatal:
    case config::LogLevel::kPanic: return log::Level::kFatal;
  }
  return log::Level::kInfo;
}

std::string ProblemReadingPem(const std::string& path, const char* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::string(key) + " \"" + path + "\": cannot read it: " + std::strerror(errno) +
           ": check the path and that praefect's user may read it";
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN") == std::string::npos)
    return std::string(key) + " \"" + path + "\" is not PEM (no -----BEGIN line)";
  return "";
}

// Registry entries compared without where they were written.
bool SameMethods(const std::vector<config::MethodEntry>& a, const std::vector<config::MethodEntry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    config::MethodEntry x = a[i];
    config::MethodEntry y = b[i];
    x.file = y.file = "";
    x.line = y.line = 0;
    if (!(x == y)) return false;
  }
  return true;
}

}  // namespace

namespace {

std::optional<log::Level> ToAccessLevel(config::AccessLogLevel level) {
  switch (level) {
    case config::AccessLogLevel::kOff: return std::nullopt;
    case config::AccessLogLevel::kTrace: return log::Level::kTrace;
    case config::AccessLogLevel::kDebug: return log::Level::kDebug;
    case config::AccessLogLevel::kInfo: return log::Level::kInfo;
    case config::AccessLogLevel::kWarn: return log::Level::kWarn;
    case config::AccessLogLevel::kError: return log::Level::kError;
  }
  return log::Level::kInfo;
}

}  // namespace

void ApplyLogging(const config::Logging& logging) {
  log::Default().SetLevel(ToLogLevel(logging.level));
  log::SetAccessLevel(ToAccessLevel(logging.access_log_level));
  if (systemd::StderrIsJournal()) {
    log::Default().SetSink(std::make_shared<systemd::JournalSink>());
  } else {
    log::Default().SetSink(std::make_shared<log::StreamSink>(
        2, logging.format == config::LogFormat::kJson ? log::Format::kJson : log::Format::kText));
  }
}

std::vector<std::string> ServeProblems(const config::Config& config) {
  std::vector<std::string> problems;
  if (config.listen_addr.empty() && config.socket_path.empty() && config.tls_listen_addr.empty())
    problems.push_back("nothing to listen on: set listen_addr, tls_listen_addr and/or socket_path in the configuration");
  if (!config.tls_listen_addr.empty()) {
    if (std::string p = ProblemReadingPem(config.tls.certificate_path, "tls.certificate_path"); !p.empty())
      problems.push_back(p);
    if (config.tls.key.empty()) {
      if (std::string p = ProblemReadingPem(config.tls.key_path, "tls.key_path"); !p.empty()) problems.push_back(p);
    }
  }
  if (config.failover.enabled && config.failover.election_strategy != config::ElectionStrategy::kPerRepository)
    problems.push_back("failover.election_strategy = \"" +
                       std::string(config::ElectionStrategyName(config.failover.election_strategy)) +
                       "\" is not supported: praefect elects a primary per repository. Set election_strategy = "
                       "\"per_repository\" (or remove it), or set [failover] enabled = false to route every write "
                       "to the node marked primary = true");
  return problems;
}

namespace {

std::vector<config::VirtualStorage> WithoutNodeTokens(std::vector<config::VirtualStorage> storages) {
  for (auto& vs : storages) {
    for (auto& node : vs.nodes) node.token.clear();
  }
  return storages;
}

}  // namespace

std::vector<std::string> RestartRequired(const config::Config& running, const config::Config& next) {
  std::vector<std::string> keys;
  auto check = [&](bool same, const char* key) {
    if (!same) keys.push_back(key);
  };
  check(running.listen_addr == next.listen_addr, "listen_addr");
  check(running.tls_listen_addr == next.tls_listen_addr, "tls_listen_addr");
  check(running.socket_path == next.socket_path, "socket_path");
  check(running.prometheus_listen_addr == next.prometheus_listen_addr, "prometheus_listen_addr");
  // [tls] is applied live (ApplyReload; the listeners load it after the
  // reload, server.cc).
  check(running.memory_queue_enabled == next.memory_queue_enabled, "memory_queue_enabled");
  check(running.prometheus == next.prometheus, "prometheus");
  check(running.failover == next.failover, "failover");
  check(running.database == next.database, "database");
  check(running.reconciliation == next.reconciliation, "reconciliation");
  check(running.replication == next.replication, "replication");
  check(running.background_verification == next.background_verification, "background_verification");
  check(running.repositories_cleanup == next.repositories_cleanup, "repositories_cleanup");
  check(running.limits == next.limits, "limits");
  check(running.backchannel == next.backchannel, "backchannel");
  check(running.yamux == next.yamux, "yamux");
  // Node channels and addresses are fixed when the node set is built; the
  // nodes' tokens alone change live (ApplyReload).
  check(WithoutNodeTokens(running.virtual_storages) == WithoutNodeTokens(next.virtual_storages),
        "virtual_storage (names, nodes, addresses, replication factors)");
  check(SameMethods(running.registry_methods, next.registry_methods), "registry.method");
  return keys;
}

config::Config ApplyReload(const config::Config& running, const config::Config& next,
                           coordinator::Coordinator* coordinator, nodes::NodeSet* nodes) {
  config::Config now = running;
  // Node tokens: applied when the virtual storages differ in them only
  // (otherwise the whole list waits for a restart, named below).
  if (!(running.virtual_storages == next.virtual_storages) &&
      WithoutNodeTokens(running.virtual_storages) == WithoutNodeTokens(next.virtual_storages)) {
    int changed = 0;
    for (size_t i = 0; i < next.virtual_storages.size(); ++i) {
      const config::VirtualStorage& vs = next.virtual_storages[i];
      for (size_t j = 0; j < vs.nodes.size(); ++j) {
        if (vs.nodes[j].token == running.virtual_storages[i].nodes[j].token) continue;
        const nodes::VirtualStorage* live = nodes->Find(vs.name);
        const nodes::Node* node = live == nullptr ? nullptr : live->FindNode(vs.nodes[j].storage);
        if (node == nullptr) continue;
        const_cast<nodes::Node*>(node)->SetToken(vs.nodes[j].token);
        ++changed;
      }
    }
    now.virtual_storages = next.virtual_storages;
    // Never the tokens themselves.
    log::Info("reload: node tokens changed; calls to the nodes are signed with them from now on",
              {{"nodes", changed}});
  }
  if (!(running.logging.level == next.logging.level) || !(running.logging.format == next.logging.format) ||
      running.logging.access_log_level != next.logging.access_log_level) {
    ApplyLogging(next.logging);
    now.logging.level = next.logging.level;
    now.logging.format = next.logging.format;
    now.logging.access_log_level = next.logging.access_log_level;
    const std::optional<log::Level> access = ToAccessLevel(next.logging.access_log_level);
    log::Info("reload: logging changed", {{"level", std::string(config::LogLevelName(next.logging.level))},
                                          {"access_log_level", access ? log::LevelName(*access) : "off"},
                                          {"format", next.logging.format == config::LogFormat::kJson ? "json"
                                                                                                      : "text"},
                                          {"journal", systemd::StderrIsJournal()}});
  }
  if (!(running.auth == next.auth)) {
    coordinator->SetAuth(next.auth.token, next.auth.transitioning);
    now.auth = next.auth;
    // Never the token itself.
    log::Info("reload: [auth] changed; calls from now on are checked against it",
              {{"token_set", !next.auth.token.empty()}, {"transitioning", next.auth.transitioning}});
  }
  if (!(running.tls == next.tls)) {
    now.tls = next.tls;
    // Never the key itself.
    log::Info("reload: [tls] changed; the TLS listeners load the certificate and key it names",
              {{"certificate_path", next.tls.certificate_path},
               {"key", next.tls.key_credential.empty()
                           ? (next.tls.key.empty() ? "key_path " + next.tls.key_path : std::string("tls.key"))
                           : "credential " + next.tls.key_credential}});
  }
  if (running.graceful_stop_timeout != next.graceful_stop_timeout) {
    now.graceful_stop_timeout = next.graceful_stop_timeout;
    log::Info("reload: graceful_stop_timeout changed",
              {{"graceful_stop_timeout_s",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::seconds>(next.graceful_stop_timeout).count())}});
  }
  std::vector<std::string> restart = RestartRequired(running, next);
  if (!restart.empty()) {
    std::string list;
    for (const std::string& k : restart) list += (list.empty() ? "" : ", ") + k;
    log::Warn("reload: these settings changed but take effect only when praefect restarts; the running values "
              "stay in force until then: systemctl restart praefect",
              {{"settings", list}});
  }
  return now;
}

}  // namespace praefect::server

namespace praefect::server {

config::Config Reload(const config::Config& running, const std::function<config::LoadResult()>& load,
                      coordinator::Coordinator* coordinator, nodes::NodeSet* nodes) {
  systemd::NotifyReloading();
  config::Config now = running;
  if (!load) {
    log::Warn("reload: SIGHUP received, but this praefect has no configuration file to re-read; ignored");
  } else {
    log::Info("reload: SIGHUP received, re-reading the configuration");
    config::LoadResult result = load();
    std::vector<std::string> problems;
    for (const config::Problem& p : result.problems) {
      if (p.severity == config::Severity::kError) {
        problems.push_back(config::FormatProblemForHumans(p));
      } else {
        log::Warn("reload: configuration warning", {{"problem", config::FormatProblemForHumans(p)}});
      }
    }
    if (result.ok() && problems.empty()) problems = ServeProblems(*result.config);
    if (!problems.empty()) {
      for (const std::string& p : problems) log::Error("reload: the new configuration is invalid", {{"problem", p}});
      log::Error("reload: keeping the running configuration: fix the problems listed above, then reload again "
                 "(systemctl reload praefect)",
                 {{"errors", static_cast<long long>(problems.size())}});
    } else {
      now = ApplyReload(running, *result.config, coordinator, nodes);
      log::Info("reload: done");
    }
  }
  systemd::NotifyReady();
  return now;
}

}  // namespace praefect::server
