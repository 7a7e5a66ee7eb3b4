#include "call_transaction.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs_util.h"
#include "hook_protocol.h"
#include "transaction_info.h"

namespace praefect::storagenode {
namespace {

// Gitaly's words first ("get backchannel: no backchannel for peer ..."),
// then what to do about it.
Status NoBackchannel(const std::string& why) {
  return Internal("get backchannel: " + why + ": the call carries " + std::string(kTransactionMetadataKey) +
                  " metadata, so its votes must go back over the connection it came on; praefect must dial this "
                  "node with the backchannel handshake ([backchannel] enabled = true), or send no transaction "
                  "on a connection without it");
}

}  // namespace

Status NodeTransactions::PrepareHooksDirectory(const std::string& dir, const std::string& hook_program) {
  if (Status st = MakeDirs(dir, 0700); !st.ok()) return st;
  for (std::string_view name : hook::kHookNames) {
    const std::string link = dir + "/" + std::string(name);
    unlink(link.c_str());
    if (symlink(hook_program.c_str(), link.c_str()) != 0)
      return Internal("creating the hook " + link + " -> " + hook_program + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<CallTransaction>> NodeTransactions::Begin(const grpc::ServerContext& ctx) const {
  const auto& md = ctx.client_metadata();
  auto it = md.find(std::string(kTransactionMetadataKey));
  if (it == md.end()) return std::unique_ptr<CallTransaction>();
  auto info = ParseTransactionInfo(std::string_view(it->second.data(), it->second.size()));
  if (!info.ok()) return info.status();
  if (hooks_dir_.empty())
    return FailedPrecondition("this storage node cannot take part in reference transactions: its hook program " +
                              hook_program_ + " is missing; install praefect-storage-node-hook beside "
                              "praefect-storage-node and restart the node");
  const std::string peer = ctx.peer();
  auto backchannel = registry_->ForPeer(peer);
  if (!backchannel.ok()) return NoBackchannel(backchannel.status().message());
  auto voter = std::make_shared<Voter>(std::move(*info), std::move(*backchannel), ctx.deadline());
  return std::make_unique<CallTransaction>(std::move(voter), hooks_, hooks_dir_);
}

CallTransaction::CallTransaction(std::shared_ptr<Voter> voter, HookServer* hooks, std::string hooks_dir)
    : voter_(std::move(voter)), hooks_(hooks), hooks_dir_(std::move(hooks_dir)), token_(hooks_->Register(voter_)) {}

CallTransaction::~CallTransaction() {
  hooks_->Unregister(token_);
  voter_->Cancel();
}

std::vector<std::string> CallTransaction::HookEnv(const std::string& repo_path) const {
  return {
      std::string(hook::kSocketEnv) + "=" + hooks_->socket_path(),
      std::string(hook::kTokenEnv) + "=" + token_,
      std::string(hook::kPrimaryEnv) + "=" + (info().primary ? "1" : "0"),
      std::string(hook::kRepositoryEnv) + "=" + repo_path,
  };
}

StatusOr<std::unique_ptr<CallTransaction>> BeginTransaction(const NodeTransactions* transactions,
                                                            const grpc::ServerContext& ctx) {
  if (transactions != nullptr) return transactions->Begin(ctx);
  const auto& md = ctx.client_metadata();
  if (md.find(std::string(kTransactionMetadataKey)) == md.end()) return std::unique_ptr<CallTransaction>();
  return NoBackchannel("no backchannel for peer " + ctx.peer() + " (this node serves no backchannels)");
}

}  // namespace praefect::storagenode
