// The ContentVerifier over a scripted store and scripted checksums: a
// secondary that differs is marked (never the primary), a write in flight
// (the primary's checksum moves) marks nothing, unhealthy replicas and
// errors are counted, and a run stops at the end of a pass or its budget.
// The SQL is tested in content_verification_store_test; the whole thing
// against real nodes in tests/e2e/reconciliation_test.py.
#include "reconcile/content_verifier.h"

#include <map>
#include <mutex>

#include "metrics/metrics.h"
#include "nodes/three_nodes.h"
#include "test_support.h"

namespace {

using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;
using praefect::datastore::ContentBatch;
using praefect::datastore::ContentCandidate;
using praefect::nodes::NodeSet;
using praefect::nodes::testing::SetHealthy;
using praefect::nodes::testing::ThreeNodes;
using praefect::reconcile::ContentOptions;
using praefect::reconcile::ContentResult;
using praefect::reconcile::ContentVerifier;
using std::chrono::milliseconds;

// The three nodes, all healthy.
std::unique_ptr<NodeSet> Nodes() {
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
  return nodes;
}

ContentCandidate Candidate(int64_t id) {
  ContentCandidate c;
  c.repository_id = id;
  c.virtual_storage = "default";
  c.relative_path = "r" + std::to_string(id) + ".git";
  c.replica_path = "@cluster/" + std::to_string(id);
  c.primary = "gitaly-1";
  c.generation = 4;
  c.up_to_date = {"gitaly-1", "gitaly-2", "gitaly-3"};
  return c;
}

// Walks `ids` in batches; records marks.
class FakeStore : public praefect::datastore::ContentVerificationStore {
 public:
  StatusOr<ContentBatch> ClaimContentBatch(int count) override {
    std::lock_guard lock(mu);
    ContentBatch batch;
    for (int i = 0; i < count && next < ids.size(); ++i) batch.repositories.push_back(Candidate(ids[next++]));
    if (batch.repositories.size() < static_cast<size_t>(count)) {
      next = 0;
      batch.ended_pass = true;
      ++passes;
    }
    batch.passes = passes;
    ++claims;
    return batch;
  }
  StatusOr<bool> MarkContentMismatch(int64_t repository_id, std::string_view storage, int64_t generation,
                                     std::string_view primary, std::string_view) override {
    std::lock_guard lock(mu);
    marks.push_back(std::to_string(repository_id) + ":" + std::string(storage) + "@" + std::to_string(generation) +
                    "<" + std::string(primary));
    return !write_meanwhile;
  }
  std::mutex mu;
  std::vector<int64_t> ids = {1, 2, 3};
  size_t next = 0;
  int64_t passes = 0;
  int claims = 0;
  bool write_meanwhile = false;
  std::vector<std::string> marks;
};

// Checksums by "<storage>:<repository replica path>"; "!" answers an error.
struct Sums {
  std::map<std::string, std::vector<std::string>> answers;  // successive answers (the last repeats)
  std::map<std::string, size_t> asked;
  std::mutex mu;
  StatusOr<std::string> operator()(const praefect::nodes::Node& node, const std::string& path) {
    std::lock_guard lock(mu);
    const std::string key = node.storage + ":" + path;
    auto it = answers.find(key);
    if (it == answers.end()) return std::string("same");
    size_t n = asked[key]++;
    const std::string& a = it->second[std::min(n, it->second.size() - 1)];
    if (a == "!") return Status(StatusCode::kUnavailable, "node down");
    return a;
  }
};

ContentVerifier Make(FakeStore* store, NodeSet* nodes, praefect::metrics::Metrics* metrics, Sums* sums) {
  ContentOptions options;
  options.batch = 2;
  options.settle = std::chrono::milliseconds(0);
  return ContentVerifier(store, nodes, metrics, options,
                         [sums](const praefect::nodes::Node& n, const std::string& p) { return (*sums)(n, p); });
}

void ADifferingSecondaryIsMarkedFromThePrimary(void**) {
  FakeStore store;
  auto nodes = Nodes();
  Sums sums;
  sums.answers["gitaly-3:@cluster/2"] = {"other"};
  praefect::metrics::Metrics metrics({});
  ContentOptions options;
  options.batch = 2;
  options.settle = std::chrono::milliseconds(200);
  ContentVerifier verifier(&store, nodes.get(), &metrics, options,
                           [&sums](const praefect::nodes::Node& n, const std::string& p) { return sums(n, p); });
  // Every series exists at 0 before the first verification.
  const std::string before = metrics.Render();
  expect_that(before.find("gitaly_praefect_content_verification_replicas_total{result=\"mismatch\",storage=\"gitaly-3\","
                          "virtual_storage=\"default\"} 0") != std::string::npos,
              "the mismatch series at 0 from the start:\n" + before);
  const auto started = std::chrono::steady_clock::now();
  auto result = verifier.Run(std::chrono::seconds(10), 0);
  assert_status_ok(result.status());
  // The difference had to hold for `settle` before it was marked (a
  // transactional write shows on a voter before it is recorded).
  expect_that(std::chrono::steady_clock::now() - started >= options.settle, "marked only after the settle time");
  expect_that(result->pass_completed && result->repositories == 3, "one pass over the three repositories");
  expect_that(result->matched == 5 && result->mismatched == 1, "five matches, one mismatch");
  expect_that(store.marks == std::vector<std::string>{"2:gitaly-3@4<gitaly-1"}, "r2 on gitaly-3 marked, from gitaly-1");
  const std::string rendered = metrics.Render();
  expect_that(rendered.find("gitaly_praefect_content_verification_replicas_total{result=\"mismatch\",storage=\"gitaly-3\","
                            "virtual_storage=\"default\"} 1") != std::string::npos,
              "the mismatch counted:\n" + rendered);
}

void AWriteInFlightMarksNothing(void**) {
  FakeStore store;
  store.ids = {7};
  auto nodes = Nodes();
  Sums sums;
  // The primary's checksum moves between the first and second look.
  sums.answers["gitaly-1:@cluster/7"] = {"before", "after"};
  sums.answers["gitaly-2:@cluster/7"] = {"after"};
  sums.answers["gitaly-3:@cluster/7"] = {"before"};
  ContentVerifier verifier = Make(&store, nodes.get(), nullptr, &sums);
  auto result = verifier.Run(std::chrono::seconds(10), 0);
  assert_status_ok(result.status());
  expect_that(store.marks.empty(), "nothing marked while the primary changes");
  expect_that(result->skipped == 1 && result->matched == 1, "gitaly-2 differed but was skipped");
  // A write recorded between the checksums and the marking.
  FakeStore racing;
  racing.ids = {8};
  racing.write_meanwhile = true;
  Sums differ;
  differ.answers["gitaly-2:@cluster/8"] = {"other"};
  ContentVerifier second = Make(&racing, nodes.get(), nullptr, &differ);
  auto raced = second.Run(std::chrono::seconds(10), 0);
  expect_that(raced.ok() && raced->mismatched == 0 && raced->skipped == 1, "a refused mark is a skip");
}

void UnhealthyAndFailingReplicasAreCounted(void**) {
  FakeStore store;
  store.ids = {1};
  auto nodes = Nodes();
  for (const auto& node : nodes->virtual_storages()[0].nodes)
    if (node->storage == "gitaly-3") node->healthy.store(false);
  Sums sums;
  sums.answers["gitaly-2:@cluster/1"] = {"!"};
  ContentVerifier verifier = Make(&store, nodes.get(), nullptr, &sums);
  auto result = verifier.Run(std::chrono::seconds(10), 0);
  expect_that(result.ok() && result->skipped == 1 && result->errors == 1 && store.marks.empty(),
              "gitaly-3 skipped (unhealthy), gitaly-2 an error, nothing marked");
  // The primary unreachable: every secondary is an error.
  FakeStore second;
  second.ids = {1};
  Sums down;
  down.answers["gitaly-1:@cluster/1"] = {"!"};
  ContentVerifier v2 = Make(&second, nodes.get(), nullptr, &down);
  auto r2 = v2.Run(std::chrono::seconds(10), 0);
  expect_that(r2.ok() && r2->errors == 1 && second.marks.empty(), "no primary checksum, nothing marked");
}

void ARunStopsAtItsLimit(void**) {
  FakeStore store;
  store.ids = {1, 2, 3, 4, 5, 6, 7, 8};
  auto nodes = Nodes();
  Sums sums;
  ContentVerifier verifier = Make(&store, nodes.get(), nullptr, &sums);
  auto result = verifier.Run(std::chrono::seconds(10), 3);
  expect_that(result.ok() && result->repositories == 4 && !result->pass_completed,
              "batches of 2 until 3 were claimed: 4");
  result = verifier.Run(milliseconds(0), 0);
  expect_that(result.ok() && result->repositories == 0, "no budget, no batch");
  // From where the walk stands (5): to the end, then from the start up to
  // the first repository this run saw.
  result = verifier.Run(std::chrono::seconds(10), 0);
  expect_that(result.ok() && result->pass_completed && result->repositories == 8,
              "once round every repository: 8, got " + std::to_string(result.ok() ? result->repositories : -1));
  expect_that(store.next == 6, "the walk left after the batch that came back round (5, 6)");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ADifferingSecondaryIsMarkedFromThePrimary),
      cmocka_unit_test(AWriteInFlightMarksNothing),
      cmocka_unit_test(UnhealthyAndFailingReplicasAreCounted),
      cmocka_unit_test(ARunStopsAtItsLimit),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
