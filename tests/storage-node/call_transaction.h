#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backchannel_registry.h"
#include "common/status_or.h"
#include "hook_server.h"
#include "transaction_voter.h"

namespace praefect::storagenode {

class CallTransaction;

// What the node needs to take part in praefect's transactions: the
// backchannels votes go over, the hook socket and the hooks directory git
// runs with. Immutable after start, thread-safe; the objects pointed to
// must outlive it.
class NodeTransactions {
 public:
  // `hooks_dir` is empty when `hook_program` (named in the refusals) is
  // missing: then every call that carries a transaction is refused.
  NodeTransactions(const BackchannelRegistry* registry, HookServer* hooks, std::string hooks_dir,
                   std::string hook_program)
      : registry_(registry), hooks_(hooks), hooks_dir_(std::move(hooks_dir)), hook_program_(std::move(hook_program)) {}

  // Fills `dir` (created if needed) with the hooks git runs: links named
  // after hook::kHookNames to `hook_program`.
  [[nodiscard]] static Status PrepareHooksDirectory(const std::string& dir, const std::string& hook_program);

  // The transaction of a call: null when the call carries no
  // gitaly-reference-transaction metadata (it then behaves as before
  // transactions: no votes, no hooks of the node). INVALID_ARGUMENT for
  // metadata that does not parse; INTERNAL "get backchannel: no
  // backchannel for peer ..." when the call did not come over a
  // backchannel, as Gitaly, since its votes could not reach praefect;
  // FAILED_PRECONDITION without the hook program.
  [[nodiscard]] StatusOr<std::unique_ptr<CallTransaction>> Begin(const grpc::ServerContext& ctx) const;

 private:
  const BackchannelRegistry* const registry_;
  HookServer* const hooks_;
  const std::string hooks_dir_;
  const std::string hook_program_;
};

// The transaction of one call, owned by its handler: votes cast by the
// handler itself, and the hooks of its git commands, which vote through
// the node's hook socket with the call's token. The destructor ends the
// hooks' access and cancels votes in flight. Thread-safe.
class CallTransaction {
 public:
  CallTransaction(std::shared_ptr<Voter> voter, HookServer* hooks, std::string hooks_dir);
  ~CallTransaction();
  CallTransaction(const CallTransaction&) = delete;
  CallTransaction& operator=(const CallTransaction&) = delete;

  const TransactionInfo& info() const { return voter_->info(); }

  // Votes SHA-1 of `data` (Voter::Vote: ABORTED "transaction was aborted"
  // / "transaction was stopped", or the RPC's error).
  [[nodiscard]] Status VoteOn(std::string_view data, VotePhase phase) { return voter_->Vote(Sha1(data), phase); }
  // Votes a hash as is (20 bytes).
  [[nodiscard]] Status VoteHash(std::string_view hash, VotePhase phase) { return voter_->Vote(hash, phase); }
  [[nodiscard]] Status Stop() { return voter_->Stop(); }
  // The first failed vote, the handler's or a hook's; OK if none.
  Status failure() const { return voter_->failure(); }
  bool stopped() const { return voter_->stopped(); }

  // `git -c` values for every ref-updating git command of the call.
  std::vector<std::string> GitConfig() const { return {"core.hooksPath=" + hooks_dir_}; }
  // The hooks' environment (hook_protocol.h) for a git command in `repo_path`.
  std::vector<std::string> HookEnv(const std::string& repo_path) const;

 private:
  const std::shared_ptr<Voter> voter_;
  HookServer* const hooks_;
  const std::string hooks_dir_;
  const std::string token_;
};

// transactions->Begin(ctx); without transaction support (null) a call with
// the metadata is refused as one that did not come over a backchannel.
[[nodiscard]] StatusOr<std::unique_ptr<CallTransaction>> BeginTransaction(const NodeTransactions* transactions,
                                                                        const grpc::ServerContext& ctx);

}  // namespace praefect::storagenode
