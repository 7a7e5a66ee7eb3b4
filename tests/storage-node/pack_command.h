#pragma once

#include <google/protobuf/repeated_field.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"

namespace praefect::storagenode {

class NodeTransactions;

// How the node runs `git upload-pack` / `git receive-pack` for the streams
// of SSHService and SmartHTTPService.
struct PackCommandOptions {
  // Looked up in PATH.
  std::string git_binary = "git";
  // HOME of the git processes: no user configuration is read from it.
  std::string home = "/nonexistent";
  // How long a client gets to half-close after git exited (see PumpGitStream).
  std::chrono::milliseconds drain_timeout{30000};
  // Reference transactions of receive-pack (call_transaction.h); null: a
  // push that carries a transaction is refused.
  const NodeTransactions* transactions = nullptr;
};

// `git -c safe.directory=* [-c key=value]... <subcommand> [flags]... <path>`.
// Options without '=' are refused (INVALID_ARGUMENT) as Gitaly's
// ConvertConfigOptions refuses them. `forced` options ("key=value", the
// node's own, such as its hooks directory) come after the client's, so
// they win.
[[nodiscard]] StatusOr<std::vector<std::string>> PackCommandArgv(
    const PackCommandOptions& options, const google::protobuf::RepeatedPtrField<std::string>& config,
    std::string_view subcommand, const std::vector<std::string>& flags, const std::string& path,
    const std::vector<std::string>& forced = {});

// The whole environment of the git process. Gitaly passes on only the
// protocol versions it knows, so only "version=2" becomes GIT_PROTOCOL.
std::vector<std::string> PackCommandEnv(const PackCommandOptions& options, const std::string& git_protocol);

}  // namespace praefect::storagenode
