// praefect -config FILE maintenance [-content-budget D] [-content-max N] [-wait D] [-untracked-older-than D]
//
// praefect's own (Praefect has no such command): one pass of the
// self-healing work, for praefect-maintenance.timer or an operator, run
// against the database and the nodes directly while the praefects serve:
//
//   1. the nodes' health, as the daemon checks it;
//   2. one reconciliation round now (src/reconcile/reconciler.h), whatever
//      the interval, unless a praefect is running one (then its round does
//      the work);
//   3. content verification (src/reconcile/content_verifier.h) for at most
//      -content-budget, going on where the cluster's walk stands;
//   4. the repositories on the nodes that the database does not know
//      (reported as list-untracked-repositories does, never deleted);
//   5. waiting up to -wait for the repairs steps 2 and 3 scheduled to take
//      effect (the praefects' replication workers run them);
//   6. the replication backlog;
// then one summary line. Exit 0: nothing left unrepaired; 2: something was
// (a node unreachable, a repair not done within -wait, a replica whose
// checksum could not be taken), so that systemd marks the unit failed;
// 1: the pass could not run.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

#include "cli/go_command.h"
#include "cli/operator_db.h"
#include "cli/praefect_client.h"
#include "common/duration.h"
#include "common/json.h"
#include "nodes/health_manager.h"
#include "nodes/node_set.h"
#include "reconcile/content_verifier.h"
#include "reconcile/reconciler.h"
#include "reconcile/untracked.h"

namespace praefect::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kPrefix = "praefect maintenance: ";
// How long a round held by another praefect is waited for.
constexpr milliseconds kLeaseWait{60000};

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "maintenance";
    s.usage = "run a reconciliation round and content verification, list untracked repositories, wait for repairs";
    s.description =
        "This command runs one maintenance pass against the database and the nodes: a reconciliation round,\n"
        "content verification within a time budget, the repositories on the nodes that the database does not\n"
        "track, and waits for the repairs it scheduled. It ends with a one-line summary and exits 2 when it\n"
        "leaves something unrepaired. praefect-maintenance.timer runs it daily.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml maintenance -content-budget 10m";
    s.flags = {DurationFlag("content-budget",
                            "how long content verification may run; 0 skips it (default: 5m0s)"),
               Int64Flag("content-max", "at most this many repositories content-verified; 0: no limit (default: 0)"),
               DurationFlag("wait", "how long to wait for the scheduled repairs (default: 5m0s)"),
               DurationFlag("untracked-older-than",
                            "only report untracked repositories modified before this duration (default: 24h0m0s)")};
    return s;
  }();
  return spec;
}

milliseconds Millis(Duration d) { return std::chrono::duration_cast<milliseconds>(d); }

std::string Seconds(Clock::duration d) {
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << std::chrono::duration<double>(d).count() << "s";
  return out.str();
}

struct Tally {
  int64_t nodes = 0, unhealthy_nodes = 0;
  int64_t jobs_scheduled = 0, jobs_done = 0;
  int64_t repositories_checked = 0, replicas_matched = 0, mismatches_found = 0, mismatches_repaired = 0;
  int64_t checksum_errors = 0, skipped = 0;
  int64_t untracked = 0, untracked_errors = 0;
  int64_t backlog = -1;
  int64_t Unrepaired() const {
    return unhealthy_nodes + (jobs_scheduled - jobs_done) + (mismatches_found - mismatches_repaired) +
           checksum_errors + untracked_errors;
  }
};

// Step 5: waits until none of `repairs` is pending, or `wait` passed, or
// every pending one has had no job for two looks (it died: the next
// reconciliation schedules it again). Returns those still pending.
StatusOr<std::vector<datastore::PendingRepair>> WaitForRepairs(datastore::ReconciliationStore* store,
                                                              const std::vector<datastore::ScheduledJob>& repairs,
                                                              milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  int jobless_looks = 0;
  while (true) {
    auto pending = store->PendingRepairs(repairs);
    if (!pending.ok()) return pending.status();
    if (pending->empty() || Clock::now() >= deadline) return pending;
    bool any_job = false;
    for (const auto& p : *pending) any_job = any_job || p.job_active;
    jobless_looks = any_job ? 0 : jobless_looks + 1;
    if (jobless_looks >= 2) return pending;
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(500), deadline - Clock::now()));
  }
}

}  // namespace

int RunMaintenance(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  const Duration budget =
      flags->Has("content-budget") ? *ParseGoDuration(flags->String("content-budget")) : std::chrono::minutes(5);
  const int64_t content_max = flags->Int64("content-max");
  const Duration wait = flags->Has("wait") ? *ParseGoDuration(flags->String("wait")) : std::chrono::minutes(5);
  const Duration older_than = flags->Has("untracked-older-than")
                                  ? *ParseGoDuration(flags->String("untracked-older-than"))
                                  : std::chrono::hours(24);
  if (content_max < 0) return PlainError(inv, "-content-max must be 0 (no limit) or more");
  if (budget.count() < 0 || wait.count() < 0 || older_than.count() < 0)
    return PlainError(inv, "durations must not be negative");
  auto config = LoadOperatorConfig(inv, "maintenance");
  if (!config) return 1;
  if (config->database.host.empty() && config->database.dbname.empty())
    return PlainError(inv, "maintenance needs [database]: reconciliation, content verification and the repairs are "
                           "kept there; configure it as the praefects have it");

  auto store = OpenOperatorStore(*config);
  if (!store.ok()) return PlainError(inv, "connect to database: " + store.status().message());
  auto node_set = nodes::NodeSet::Create(*config, grpc::ChannelArguments());
  if (!node_set.ok()) return PlainError(inv, "nodes: " + node_set.status().message());
  nodes::NodeSet& nodes = **node_set;
  const auto started = Clock::now();
  Tally tally;

  // 1. Nodes.
  nodes.CheckAll(std::chrono::seconds(5));
  std::set<const nodes::Node*> unhealthy_at_start;
  for (const auto& vs : nodes.virtual_storages()) {
    for (const auto& node : vs.nodes) {
      ++tally.nodes;
      if (node->healthy.load()) continue;
      ++tally.unhealthy_nodes;
      unhealthy_at_start.insert(node.get());
      inv.out << kPrefix << "node " << GoQuote(node->storage) << " of virtual storage " << GoQuote(vs.name)
              << " at " << node->address
              << " is unhealthy: its replicas are neither verified nor repaired; see praefect -config FILE dial-nodes\n";
    }
  }
  inv.out << kPrefix << "nodes: " << tally.nodes - tally.unhealthy_nodes << " of " << tally.nodes << " healthy\n"
          << std::flush;
  // Checked every second for the rest of the pass, as the daemon does: a
  // node that hangs meanwhile is left alone within about two seconds.
  nodes.StartHealthChecks(std::chrono::seconds(1), std::chrono::seconds(1));

  // 2. Reconciliation.
  std::vector<datastore::ScheduledJob> reconciled, content_repairs;
  {
    reconcile::Options options;
    options.praefect_name = "maintenance@" + nodes::PraefectName(*config);
    reconcile::Reconciler reconciler(store->get(), &nodes, nullptr, options);
    const auto until = Clock::now() + kLeaseWait;
    while (true) {
      auto round = reconciler.RunRound(true);
      if (!round.ok()) return PlainError(inv, "reconciliation: " + round.status().message());
      if (round->ran) {
        tally.jobs_scheduled = static_cast<int64_t>(round->jobs.size());
        int64_t deletions = 0;
        for (const auto& job : round->jobs) deletions += job.change == datastore::ChangeType::kDeleteReplica;
        inv.out << kPrefix << "reconciliation: " << tally.jobs_scheduled << " jobs scheduled ("
                << tally.jobs_scheduled - deletions << " update, " << deletions << " delete_replica)\n";
        reconciled = round->jobs;
        break;
      }
      if (round->skipped.find("is reconciling") == std::string::npos || Clock::now() >= until) {
        inv.out << kPrefix << "reconciliation: not run: " << round->skipped << "\n";
        break;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    inv.out << std::flush;
  }

  // 3. Content verification.
  if (budget.count() > 0) {
    const auto content_started = Clock::now();
    // A checksum that hangs costs at most 10 s (or the budget).
    reconcile::ContentOptions content_options;
    content_options.call_timeout = std::min(Millis(budget), content_options.call_timeout / 3);
    reconcile::ContentVerifier verifier(store->get(), &nodes, nullptr, content_options);
    auto result = verifier.Run(Millis(budget), content_max);
    if (!result.ok()) return PlainError(inv, "content verification: " + result.status().message());
    tally.repositories_checked = result->repositories;
    tally.replicas_matched = result->matched;
    tally.mismatches_found = result->mismatched;
    tally.checksum_errors = result->errors;
    tally.skipped = result->skipped;
    content_repairs = result->repairs;
    inv.out << kPrefix << "content verification: " << result->repositories << " repositories checked in "
            << Seconds(Clock::now() - content_started) << ": " << result->matched << " replicas match, "
            << result->mismatched << " differ (repairing from the primary), " << result->skipped << " skipped, "
            << result->errors << " errors"
            << (result->pass_completed ? "; a pass over every repository completed" : "; the next run goes on from here")
            << "\n"
            << std::flush;
  } else {
    inv.out << kPrefix << "content verification: skipped (-content-budget 0)\n";
  }

  // 4. Untracked repositories.
  const auto cutoff =
      std::chrono::system_clock::now() - std::chrono::duration_cast<std::chrono::system_clock::duration>(older_than);
  for (const auto& vs : nodes.virtual_storages()) {
    for (const auto& node : vs.nodes) {
      if (!node->healthy.load()) continue;
      reconcile::UntrackedWalk walk;
      walk.virtual_storage = vs.name;
      walk.storage = node->storage;
      walk.address = node->address;
      walk.token = node->Token();
      walk.channel = node->channel;
      walk.cutoff = cutoff;
      Status st = reconcile::WalkUntracked(walk, store->get(), [&](const std::string& path) {
        ++tally.untracked;
        inv.out << kPrefix << "untracked repository: {\"relative_path\":" << JsonQuote(path)
                << ",\"storage\":" << JsonQuote(walk.storage) << ",\"virtual_storage\":" << JsonQuote(vs.name)
                << "}\n";
        return Status::Ok();
      });
      if (!st.ok()) {
        ++tally.untracked_errors;
        inv.out << kPrefix << "untracked repositories: " << st.message() << "\n";
      }
    }
  }
  inv.out << kPrefix << "untracked repositories: " << tally.untracked << " (reported, never deleted: track them with "
          << "track-repository or remove them from the node)\n"
          << std::flush;

  // 5. The repairs.
  std::vector<datastore::ScheduledJob> repairs = reconciled;
  repairs.insert(repairs.end(), content_repairs.begin(), content_repairs.end());
  if (!repairs.empty()) {
    inv.out << kPrefix << "waiting up to " << FormatGoDuration(wait) << " for " << repairs.size()
            << " repairs to take effect\n"
            << std::flush;
    auto pending = WaitForRepairs(store->get(), repairs, Millis(wait));
    if (!pending.ok()) return PlainError(inv, "waiting for the repairs: " + pending.status().message());
    for (const auto& p : *pending) {
      inv.out << kPrefix << "not repaired: " << datastore::ChangeTypeName(p.job.change) << " of "
              << GoQuote(p.job.relative_path) << " (repository " << p.job.repository_id << ") on "
              << GoQuote(p.job.target_storage) << " of " << GoQuote(p.job.virtual_storage) << ": "
              << (p.job_active ? "its replication job is still queued or running"
                               : "no replication job is left for it (it failed); the next reconciliation schedules "
                                 "it again")
              << "\n";
    }
    auto pending_reconciled = (*store)->PendingRepairs(reconciled);
    auto pending_content = (*store)->PendingRepairs(content_repairs);
    if (!pending_reconciled.ok() || !pending_content.ok())
      return PlainError(inv, "waiting for the repairs: " + (pending_reconciled.ok() ? pending_content.status()
                                                                                    : pending_reconciled.status())
                                                               .message());
    tally.jobs_done = tally.jobs_scheduled - static_cast<int64_t>(pending_reconciled->size());
    tally.mismatches_repaired = tally.mismatches_found - static_cast<int64_t>(pending_content->size());
  }

  // A node that became unhealthy during the pass left its replicas
  // unverified or unrepaired too.
  nodes.StopHealthChecks();
  for (const auto& vs : nodes.virtual_storages()) {
    for (const auto& node : vs.nodes) {
      if (node->healthy.load() || unhealthy_at_start.count(node.get()) != 0) continue;
      ++tally.unhealthy_nodes;
      inv.out << kPrefix << "node " << GoQuote(node->storage) << " of virtual storage " << GoQuote(vs.name)
              << " at " << node->address << " became unhealthy during the pass; see praefect -config FILE dial-nodes\n";
    }
  }

  // 6. Backlog.
  auto backlog = (*store)->ActiveReplicationJobs();
  if (backlog.ok()) tally.backlog = *backlog;
  inv.out << kPrefix << "replication backlog: "
          << (backlog.ok() ? std::to_string(*backlog) + " jobs queued or running" : backlog.status().message())
          << "\n";

  const int64_t unrepaired = tally.Unrepaired();
  inv.out << kPrefix << (unrepaired == 0 ? "OK" : "UNREPAIRED") << ": nodes_healthy=" << tally.nodes - tally.unhealthy_nodes
          << "/" << tally.nodes << " jobs_scheduled=" << tally.jobs_scheduled << " jobs_done=" << tally.jobs_done
          << " repositories_checked=" << tally.repositories_checked << " mismatches_found=" << tally.mismatches_found
          << " mismatches_repaired=" << tally.mismatches_repaired << " checksum_errors=" << tally.checksum_errors
          << " untracked_repositories=" << tally.untracked << " backlog=" << tally.backlog
          << " unrepaired=" << unrepaired << " duration=" << Seconds(Clock::now() - started) << "\n"
          << std::flush;
  return unrepaired == 0 ? 0 : 2;
}

}  // namespace praefect::cli
