// praefect -config FILE check [-q]
//
// As Praefect's: the startup checks of a Gitaly Cluster, each bounded by
// 5 s, in order: migrations, node connectivity and disk access, database
// read/write, unavailable repositories (a warning), clock synchronisation
// (NTP_HOST, DRIFT_THRESHOLD) here and on every node. Exit 1 ("checks
// failed") when a fatal one fails.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <ostream>
#include <random>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include "auth/token.h"
#include "cli/go_command.h"
#include "cli/node_ping.h"
#include "cli/operator_db.h"
#include "cli/praefect_client.h"
#include "cli/sql_common.h"
#include "common/duration.h"
#include "common/ntp.h"
#include "datastore/postgres/migrations.h"
#include "datastore/postgres/migrator.h"
#include "nodes/health_manager.h"
#include "nodes/node_set.h"
#include "praefect/gitaly_newer.pb.h"

namespace praefect::cli {
namespace {

constexpr std::chrono::seconds kCheckTimeout{5};

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "check";
    s.usage = "run startup checks";
    s.description =
        "Run Praefect startup checks.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml check";
    s.flags = {BoolFlag("q", "do not print verbose output about each check")};
    return s;
  }();
  return spec;
}

struct Check {
  std::string name;
  std::string description;
  bool fatal = true;
  // Runs the check; `say` prints a detail line (nothing with -q).
  std::function<Status(const std::function<void(const std::string&)>& say)> run;
};

Status MigrationsCheck(const config::Config& config) {
  auto conn = OpenDatabase(config, kCheckTimeout);
  if (!conn.ok()) return conn.status();
  datastore::postgres::Migrator migrator(conn->get(), datastore::postgres::EmbeddedMigrations(),
                                         datastore::postgres::Clock::now() + kCheckTimeout);
  auto pending = migrator.Pending();
  if (!pending.ok()) return pending.status();
  if (!pending->empty()) return FailedPrecondition(std::to_string(pending->size()) + " migrations have not been run");
  return Status::Ok();
}

Status ReadWriteCheck(const config::Config& config, const std::function<void(const std::string&)>& say) {
  auto conn = OpenDatabase(config, kCheckTimeout);
  if (!conn.ok()) return Status(conn.status().code(), "error opening database connection: " + conn.status().message());
  const auto deadline = datastore::postgres::Clock::now() + kCheckTimeout;
  auto& db = **conn;
  if (auto begun = db.Exec("BEGIN", {}, deadline); !begun.ok())
    return Status(begun.status().code(), "error starting transaction: " + begun.status().message());
  // Whatever happens, nothing stays: the connection closes with the
  // transaction open or rolled back.
  struct Rollback {
    datastore::postgres::Connection& db;
    datastore::postgres::Deadline deadline;
    ~Rollback() { (void)db.Exec("ROLLBACK", {}, deadline); }
  } rollback{db, deadline};
  if (auto read = db.Exec("SELECT id FROM hello_world", {}, deadline); !read.ok())
    return Status(read.status().code(), "error reading from table: " + read.status().message());
  say("successfully read from database");
  auto wrote = db.Exec("INSERT INTO hello_world (id) VALUES(1)", {}, deadline);
  if (!wrote.ok()) return Status(wrote.status().code(), "error writing to table: " + wrote.status().message());
  if (wrote->affected != 1) return Internal("failed to insert row");
  say("successfully wrote to database");
  return Status::Ok();
}

Status UnavailableCheck(const config::Config& config, const std::function<void(const std::string&)>& say) {
  auto store = OpenOperatorStore(config, kCheckTimeout);
  if (!store.ok())
    return Status(store.status().code(), "error opening database connection: " + store.status().message());
  datastore::ConfiguredStorages configured;
  for (const auto& vs : config.virtual_storages)
    for (const auto& node : vs.nodes) configured.emplace_back(vs.name, node.storage);
  std::map<std::string, size_t> unavailable;  // sorted: the lines do not come in random order
  for (const auto& vs : config.virtual_storages) {
    auto repos = (*store)->ListDataloss(vs.name, false, configured, nodes::HealthManagerOptions{}.window);
    if (!repos.ok()) return repos.status();
    if (!repos->empty()) unavailable[vs.name] = repos->size();
  }
  if (unavailable.empty()) {
    say("All repositories are available.");
    return Status::Ok();
  }
  for (const auto& [vs, n] : unavailable)
    say("virtual-storage " + GoQuote(vs) + " has " + std::to_string(n) +
        (n == 1 ? " repository that is unavailable." : " repositories that are unavailable."));
  return FailedPrecondition("repositories unavailable");
}

std::string RandomId() {
  static const char kChars[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::mt19937_64 rng(std::random_device{}());
  std::string id = "01";
  for (int i = 0; i < 24; ++i) id += kChars[rng() % 32];
  return id;
}

Status ClockCheck(const config::Config& config, const std::function<void(const std::string&)>& say) {
  Duration threshold = std::chrono::minutes(1);
  if (const char* env = std::getenv("DRIFT_THRESHOLD"); env != nullptr && *env != '\0') {
    auto parsed = ParseGoDuration(env);
    if (!parsed.ok()) return InvalidArgument("env var DRIFT_THRESHOLD expected to be an duration (5s, 100ms, etc.)");
    threshold = *parsed;
  }
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(threshold);
  if (threshold.count() != 0 && millis.count() == 0)
    return InvalidArgument("env var DRIFT_THRESHOLD expected to be 0 or at least 1ms");
  const char* host_env = std::getenv("NTP_HOST");
  const std::string host = host_env != nullptr ? host_env : "";
  const std::string correlation_id = RandomId();
  say("checking with NTP service at " + host + " and allowed clock drift " + std::to_string(millis.count()) +
      " ms [correlation_id: " + correlation_id + "]");
  const auto deadline = std::chrono::system_clock::now() + kCheckTimeout;
  auto synced = ClockSynced(host, threshold, kCheckTimeout);
  if (!synced.ok()) return Status(synced.status().code(), "praefect: " + synced.status().message());
  if (!*synced) return FailedPrecondition("praefect: clock is not synced");

  gitaly::ClockSyncedRequest request;
  request.set_ntp_host(host);
  request.set_drift_threshold_millis(millis.count());
  request.mutable_drift_threshold()->set_seconds(threshold.count() / 1000000000);
  request.mutable_drift_threshold()->set_nanos(static_cast<int32_t>(threshold.count() % 1000000000));
  for (const auto& vs : config.virtual_storages) {
    for (const auto& node : vs.nodes) {
      auto channel = nodes::Dial(node.address, grpc::ChannelArguments());
      if (!channel.ok()) return Status(channel.status().code(), node.address + " machine: " + channel.status().message());
      if (!(*channel)->WaitForConnected(deadline))
        return Unavailable(node.address + " machine: context deadline exceeded");
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      ctx.AddMetadata("x-gitlab-correlation-id", correlation_id);
      if (!node.token.empty())
        ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                        auth::BearerV2(node.token, std::chrono::system_clock::now()));
      gitaly::ClockSyncedResponse response;
      const grpc::internal::RpcMethod method("/gitaly.ServerService/ClockSynced",
                                             grpc::internal::RpcMethod::NORMAL_RPC, *channel);
      grpc::Status st = grpc::internal::BlockingUnaryCall(channel->get(), method, &ctx, request, &response);
      if (!st.ok())
        return Status(static_cast<StatusCode>(st.error_code()), "gitaly node at " + node.address + ": " + GoRpcError(st));
      if (!response.synced()) return FailedPrecondition("gitaly node at " + node.address + ": clock is not synced");
    }
  }
  return Status::Ok();
}

std::vector<Check> Checks(const config::Config& config) {
  return {
      {"praefect migrations", "confirms whether or not all praefect migrations have run", true,
       [&config](const auto&) { return MigrationsCheck(config); }},
      {"gitaly node connectivity & disk access",
       "confirms if praefect can reach all of its gitaly nodes, and whether or not the gitaly nodes can read/write "
       "from and to its storages.",
       true,
       nullptr},  // set by RunCheck: it prints as it goes
      {"database read/write", "checks if praefect can write/read to and from the database", true,
       [&config](const auto& say) { return ReadWriteCheck(config, say); }},
      {"unavailable repositories",
       "lists repositories that are missing a valid primary, hence rendering them unavailable", false,
       [&config](const auto& say) { return UnavailableCheck(config, say); }},
      {"clock synchronization",
       "checks if system clock is in sync with NTP service. You can use NTP_HOST env var to provide NTP service URL "
       "to query and DRIFT_THRESHOLD to provide allowed drift as a duration (1ms, 20sec, etc.)",
       true,
       [&config](const auto& say) { return ClockCheck(config, say); }},
  };
}

}  // namespace

int RunCheck(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  auto config = LoadOperatorConfig(inv, "check");
  if (!config) return 1;
  const bool quiet = flags->Bool("q");
  auto say = [&](const std::string& line) {
    if (!quiet) inv.out << line << "\n" << std::flush;
  };
  std::vector<Check> checks = Checks(*config);
  // Node connectivity prints dial-nodes' lines as it goes.
  checks[1].run = [&](const auto&) {
    const std::vector<std::string> failed = PingAll(*config, kCheckTimeout, quiet ? nullptr : &inv.out);
    if (failed.empty()) return Status::Ok();
    std::string list;
    for (const std::string& a : failed) list += (list.empty() ? "" : ", ") + a;
    return Unavailable("the following nodes are not healthy: " + list);
  };
  int failed = 0;
  bool fatal = false;
  for (const Check& check : checks) {
    const char* severity = check.fatal ? "fatal" : "warning";
    if (quiet) {
      inv.out << "Checking " << check.name << "...";
    } else {
      inv.out << "Checking " << check.name << " - " << check.description << " [" << severity << "]\n";
    }
    inv.out << std::flush;
    Status st = check.run(say);
    if (st.ok()) {
      inv.out << "Passed\n";
      continue;
    }
    ++failed;
    fatal = fatal || check.fatal;
    inv.out << "Failed (" << severity << ") error: " << st.message() << "\n";
  }
  inv.out << "\n";
  if (fatal) {
    inv.out << failed << " check(s) failed, at least one was fatal.\n" << std::flush;
    return PlainError(inv, "checks failed");
  }
  if (failed > 0) {
    inv.out << failed << " check(s) failed, but none are fatal.\n";
  } else {
    inv.out << "All checks passed.\n";
  }
  return 0;
}

}  // namespace praefect::cli
