#include "reconcile/content_verifier.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "common/base64.h"
#include "log/log.h"
#include "nodes/node_call.h"
#include "repository-service.pb.h"

namespace praefect::reconcile {
namespace {

using Clock = std::chrono::steady_clock;

// An idle daemon (no repository, or the database down) looks again this
// often.
constexpr std::chrono::milliseconds kIdle{1000};

std::string CorrelationId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return "content-verification-" + std::to_string(rng());
}

}  // namespace

StatusOr<std::string> NodeChecksum(const nodes::Node& node, const std::string& replica_path,
                                   std::chrono::milliseconds timeout) {
  gitaly::CalculateChecksumRequest req;
  req.mutable_repository()->set_storage_name(node.storage);
  req.mutable_repository()->set_relative_path(replica_path);
  nodes::NodeAnswer answer =
      nodes::CallNodeForAnswer(node, "/gitaly.RepositoryService/CalculateChecksum", req.SerializeAsString(), timeout);
  if (!answer.status.ok())
    return Status(static_cast<StatusCode>(answer.status.error_code()),
                  "CalculateChecksum on " + node.Label() + ": " + answer.status.error_message());
  gitaly::CalculateChecksumResponse resp;
  if (!resp.ParseFromString(answer.response))
    return Internal("CalculateChecksum on " + node.Label() + ": the answer does not parse");
  return resp.checksum();
}

ContentVerifier::ContentVerifier(datastore::ContentVerificationStore* store, const nodes::NodeSet* nodes,
                                 metrics::Metrics* metrics, ContentOptions options, ChecksumFn checksum)
    : store_(store), nodes_(nodes), metrics_(metrics), options_(options), checksum_(std::move(checksum)) {
  if (!checksum_) {
    const auto timeout = options_.call_timeout;
    checksum_ = [timeout](const nodes::Node& node, const std::string& path) { return NodeChecksum(node, path, timeout); };
  }
  // Every series at 0 from the start: a dashboard's rate of it reads 0, not
  // "no data", before the first verification.
  if (metrics_ != nullptr && nodes_ != nullptr) {
    for (const auto& vs : nodes_->virtual_storages())
      for (const auto& node : vs.nodes)
        for (const char* result : {"match", "mismatch", "skipped", "error"})
          (void)metrics_->ContentVerification(vs.name, node->storage, result);
  }
}

ContentVerifier::~ContentVerifier() { Stop(); }

void ContentVerifier::Start() { thread_ = std::thread([this] { Loop(); }); }

void ContentVerifier::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ContentVerifier::Count(const std::string& virtual_storage, const std::string& storage, const char* outcome) {
  if (metrics_ != nullptr) metrics_->ContentVerification(virtual_storage, storage, outcome).Increment();
}

void ContentVerifier::Verify(const datastore::ContentCandidate& repo, ContentResult* result) {
  const nodes::VirtualStorage* vs = nodes_->Find(repo.virtual_storage);
  if (vs == nullptr) return;
  const nodes::Node* primary = vs->FindNode(repo.primary);
  std::vector<const nodes::Node*> secondaries;
  for (const auto& storage : repo.up_to_date) {
    const nodes::Node* node = vs->FindNode(storage);
    if (node == nullptr || node == primary) continue;
    if (!node->healthy.load()) {
      ++result->skipped;
      Count(repo.virtual_storage, storage, "skipped");
      continue;
    }
    secondaries.push_back(node);
  }
  if (primary == nullptr || !primary->healthy.load() || secondaries.empty()) return;
  ++result->repositories;
  auto fields = [&](const nodes::Node& node) {
    return log::Fields{{"virtual_storage", repo.virtual_storage},
                       {"relative_path", repo.relative_path},
                       {"repository_id", static_cast<long long>(repo.repository_id)},
                       {"storage", node.storage},
                       {"primary", primary->storage},
                       {"generation", static_cast<long long>(repo.generation)}};
  };
  auto reference = checksum_(*primary, repo.replica_path);
  if (!reference.ok()) {
    log::Warn("content verification: cannot take the primary's checksum; the repository is checked again on the "
              "next pass",
              [&] {
                auto f = fields(*primary);
                f.emplace_back("error", reference.status().message());
                return f;
              }());
    for (const nodes::Node* s : secondaries) {
      ++result->errors;
      Count(repo.virtual_storage, s->storage, "error");
    }
    return;
  }
  std::vector<std::pair<const nodes::Node*, std::string>> differing;
  for (const nodes::Node* s : secondaries) {
    auto sum = checksum_(*s, repo.replica_path);
    if (!sum.ok()) {
      ++result->errors;
      Count(repo.virtual_storage, s->storage, "error");
      auto f = fields(*s);
      f.emplace_back("error", sum.status().message());
      log::Warn("content verification: cannot take a replica's checksum; it is checked again on the next pass", f);
      continue;
    }
    if (*sum == *reference) {
      ++result->matched;
      Count(repo.virtual_storage, s->storage, "match");
    } else {
      differing.emplace_back(s, *sum);
    }
  }
  if (differing.empty()) return;
  // A write in flight (applied on the primary, not yet recorded) shows as
  // a difference: the primary's checksum moved meanwhile. Leave it; the
  // write's own replication follows.
  // A transactional write commits on the voters together: a secondary may
  // show it before the primary does, and it is recorded (a new generation)
  // only once the call ended. So the difference must still hold after
  // `settle`, the primary unchanged, before anything is marked.
  if (options_.settle.count() > 0) {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, options_.settle, [this] { return stopping_; })) return;
  }
  auto again = checksum_(*primary, repo.replica_path);
  if (!again.ok() || *again != *reference) {
    for (const auto& [node, sum] : differing) {
      ++result->skipped;
      Count(repo.virtual_storage, node->storage, "skipped");
    }
    return;
  }
  for (const auto& [node, sum] : differing) {
    const std::string correlation_id = CorrelationId();
    auto marked = store_->MarkContentMismatch(repo.repository_id, node->storage, repo.generation, primary->storage,
                                              correlation_id);
    auto f = fields(*node);
    f.emplace_back("checksum", sum);
    f.emplace_back("primary_checksum", *reference);
    if (!marked.ok()) {
      ++result->errors;
      Count(repo.virtual_storage, node->storage, "error");
      f.emplace_back("error", marked.status().message());
      log::Error("content verification: a replica differs from its primary at the same generation but it could not "
                 "be marked for repair; the next pass finds it again",
                 f);
      continue;
    }
    if (!*marked) {  // a write was recorded meanwhile
      ++result->skipped;
      Count(repo.virtual_storage, node->storage, "skipped");
      continue;
    }
    ++result->mismatched;
    Count(repo.virtual_storage, node->storage, "mismatch");
    result->repairs.push_back(datastore::ScheduledJob{datastore::ChangeType::kUpdate, repo.repository_id,
                                                      repo.virtual_storage, repo.relative_path, primary->storage,
                                                      node->storage, correlation_id});
    log::Warn("replica content differs from the primary's at the same generation: marked outdated, repairing it "
              "from the primary",
              f);
  }
}

StatusOr<int> ContentVerifier::Batch(ContentResult* result) {
  auto batch = store_->ClaimContentBatch(std::max(1, options_.batch));
  if (!batch.ok()) return batch.status();
  result->passes = batch->passes;
  result->pass_completed = result->pass_completed || batch->ended_pass;
  for (const auto& repo : batch->repositories) Verify(repo, result);
  return static_cast<int>(batch->repositories.size());
}

StatusOr<ContentResult> ContentVerifier::Run(std::chrono::milliseconds budget, int64_t max_repositories) {
  const auto deadline = Clock::now() + budget;
  ContentResult result;
  int64_t claimed = 0;
  int passes_ended = 0;
  std::set<int64_t> seen;
  while (Clock::now() < deadline && (max_repositories == 0 || claimed < max_repositories)) {
    auto batch = store_->ClaimContentBatch(std::max(1, options_.batch));
    if (!batch.ok()) return batch.status();
    result.passes = batch->passes;
    // The walk is the cluster's: it may stand anywhere. Once round: past
    // the end, back at the start, up to a repository this run saw.
    bool wrapped = false;
    for (const auto& repo : batch->repositories) {
      if (!seen.insert(repo.repository_id).second) {
        wrapped = true;
        break;
      }
      Verify(repo, &result);
    }
    claimed += static_cast<int64_t>(batch->repositories.size());
    if (batch->ended_pass) {
      result.pass_completed = true;
      ++passes_ended;
    }
    if (wrapped || passes_ended >= 2 || (batch->ended_pass && seen.empty())) break;
  }
  return result;
}

void ContentVerifier::Loop() {
  std::unique_lock lock(mu_);
  bool warned = false;
  while (!stopping_) {
    lock.unlock();
    const auto started = Clock::now();
    ContentResult result;
    auto claimed = Batch(&result);
    std::chrono::milliseconds pause = kIdle;
    if (!claimed.ok()) {
      if (!warned)
        log::Warn("content verification: cannot claim repositories; retrying", {{"error", claimed.status().message()}});
      warned = true;
    } else {
      warned = false;
      // Debug: on a small cluster a pass ends every few seconds.
      if (result.pass_completed)
        log::Debug("content verification: a pass over every repository ended",
                   {{"passes", static_cast<long long>(result.passes)}});
      if (*claimed > 0) {
        // The pace: `claimed` repositories per batch at the configured rate.
        const auto due = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::duration<double>(*claimed / options_.repositories_per_second));
        pause = std::max(std::chrono::milliseconds(0),
                         due - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started));
      }
    }
    lock.lock();
    cv_.wait_for(lock, pause, [this] { return stopping_; });
  }
}

}  // namespace praefect::reconcile
