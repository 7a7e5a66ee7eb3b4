#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>
#include <vector>

#include "call_transaction.h"
#include "common/status_or.h"
#include "git_command.h"
#include "request_context.h"

// The steps a transactional call adds to what it did before (reference/
// transactions.md §7). Every helper takes the call's CallTransaction, null
// for a call without one: then it does exactly what the call did before.
namespace praefect::storagenode {

// Runs `git <args>` in `repo_path` as RunGit does; within a transaction
// with the node's hooks (`-c core.hooksPath`) and their environment, so
// that the reference-transaction hook votes on the ref updates.
[[nodiscard]] StatusOr<GitResult> RunGitUpdatingRefs(const NodeDeps& deps, const CallTransaction* tx,
                                                     const std::string& repo_path,
                                                     const std::vector<std::string>& args,
                                                     const std::string& input = "");

// What a new repository's vote hashes: HEAD's target and every ref with its
// object, as git lists them, so that replicas created alike vote alike.
[[nodiscard]] StatusOr<std::string> RepositoryVoteData(const GitEnv& git, const std::string& repo_path);

// Publishes a repository staged in the scratch directory (MoveIntoPlace).
// Within a transaction: votes PREPARED on RepositoryVoteData before the
// rename, COMMITTED after it; when a vote fails, no repository is left at
// `path` (after the rename it is moved back to `staged`, which the caller
// removes with its scratch directory) and the vote's error is returned,
// prefixed with `what`.
[[nodiscard]] Status PublishRepository(const NodeDeps& deps, CallTransaction* tx, const std::string& staged,
                                       const std::string& path, const std::string& what,
                                       const std::string& exists_message);

// The end of a transactional receive-pack (SSH or HTTP), as Gitaly's: once
// git succeeded, a last vote of 20 zero bytes (COMMITTED), so that a push
// whose updates were all refused still votes once. STOP is no error (a hook
// of the primary declined, and git told the client); anything else is
// ABORTED "<method>: final transactional vote: ...". A failed git keeps its
// own status, unless a vote of its hooks failed (git dies when a prepared
// vote fails): then that failure is the call's error.
grpc::Status FinishReceivePack(CallTransaction* tx, const grpc::Status& git_status, std::string_view method);

// A failed vote of the call (CallTransaction::failure) as the call's error,
// prefixed with `what`; OK when every vote committed.
Status TransactionFailure(const CallTransaction* tx, std::string_view what);

}  // namespace praefect::storagenode
