#include "coordinator/record.h"

#include <chrono>
#include <string>
#include <vector>

#include "common/quote.h"
#include "log/log.h"
#include "nodes/node_call.h"
#include "wire/rewriter.h"

namespace praefect::coordinator {
namespace {

constexpr std::chrono::seconds kRemoveTimeout{30};

// Removes `replica_path` from `node`: OK when it is gone (or was never
// there), else why not.
Status RemoveReplica(const nodes::Node& node, const std::string& replica_path) {
  // RemoveRepositoryRequest { Repository repository = 1; }, written with
  // the rewriter, which creates the absent repository.
  static const std::vector<uint32_t> kRepositoryField = {1};
  auto request = wire::RewriteRepository("", kRepositoryField, wire::RepositoryRewrite{node.storage, replica_path});
  if (!request.ok()) return request.status();
  grpc::Status st = nodes::CallNode(node, "/gitaly.RepositoryService/RemoveRepository", *request,
                                    std::chrono::duration_cast<std::chrono::milliseconds>(kRemoveTimeout));
  if (st.ok() || st.error_code() == grpc::StatusCode::NOT_FOUND) return Status::Ok();
  return Status(static_cast<StatusCode>(st.error_code()), st.error_message());
}

}  // namespace

bool RetryHelps(const Status& st) {
  return st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded ||
         st.code() == StatusCode::kAborted;
}

Status NotRecorded(const Status& st) {
  if (RetryHelps(st))
    return Status(StatusCode::kUnavailable,
                        "the node applied the change but praefect could not record it (" + st.message() +
                            "); the change is not acknowledged: retry once the database is reachable");
  return Status(st.code(),
                      "the node applied the change but praefect could not record it (" + st.message() +
                          "); the change is not acknowledged, and retrying will not help: report this with "
                          "praefect's log");
}

void CommitCreation(datastore::Datastore* store, const datastore::NewRepository& repo, const nodes::Node& primary,
                    const std::vector<const nodes::Node*>& voters, const std::function<void()>& invalidate,
                    const Status& node_status, http2::Route::CommitDone done) {
  if (!node_status.ok()) return done(std::nullopt);
  const Status recorded = store->CreateRepository(repo);
  invalidate();
  if (recorded.ok()) return done(std::nullopt);

  // Every node that may have created the replica: the primary, and the
  // transaction's voters (they create it with the primary).
  std::vector<const nodes::Node*> holders = {&primary};
  holders.insert(holders.end(), voters.begin(), voters.end());
  std::string removed_on, left_on;
  for (const nodes::Node* node : holders) {
    const Status removed = RemoveReplica(*node, repo.replica_path);
    if (removed.ok()) {
      removed_on += (removed_on.empty() ? "" : ", ") + node->Label();
      continue;
    }
    left_on += (left_on.empty() ? "" : ", ") + node->Label() + " (" + removed.message() + ")";
    log::Error("a repository was created on a node but not registered, and removing it failed",
               {{"virtual_storage", repo.virtual_storage},
                {"relative_path", repo.relative_path},
                {"storage", node->storage},
                {"replica_path", repo.replica_path},
                {"correlation_id", repo.correlation_id},
                {"error", removed.message()}});
  }
  const std::string replica = "replica " + QuoteForMessage(repo.replica_path);
  std::string cleanup;
  if (!removed_on.empty()) cleanup = "the " + replica + " that this call created was removed again from " + removed_on;
  if (!left_on.empty())
    cleanup += std::string(cleanup.empty() ? "" : "; ") + "the " + replica + " that this call created could not " +
               "be removed from " + left_on + ": remove it there by hand";
  const std::string name = "repository " + QuoteForMessage(repo.relative_path) + " in virtual storage " +
                           QuoteForMessage(repo.virtual_storage);
  if (recorded.code() == StatusCode::kAlreadyExists)
    return done(Status(StatusCode::kAlreadyExists,
                       name + " already exists: another call created it at the same time (" + cleanup + ")"));
  if (RetryHelps(recorded))
    return done(Status(StatusCode::kUnavailable, name + " was not created: praefect could not record it (" +
                                                     recorded.message() + "); " + cleanup +
                                                     "; retry once the database is reachable"));
  done(Status(recorded.code(), name + " was not created: the database refused to record it (" + recorded.message() +
                                   "); " + cleanup + "; retrying will not help"));
}

}  // namespace praefect::coordinator
