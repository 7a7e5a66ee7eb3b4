#pragma once

#include <string>
#include <vector>

#include "common/status_or.h"

namespace praefect::storagenode {

// One `[[storage]]` of the node: a name and the directory holding its
// repositories.
struct StorageConfig {
  std::string name;
  std::string path;
};

// The node's configuration, in Gitaly's config.toml shape (the subset the
// node uses). Plain data.
struct NodeConfig {
  std::string listen_addr;  // host:port; port 0 picks a free port
  std::string socket_path;  // unix socket
  std::string auth_token;   // [auth] token; empty: no authentication
  bool auth_transitioning = false;
  std::vector<StorageConfig> storages;
  std::string git_binary = "git";  // [git] bin_path
};

// Parses config text. `origin` names the file in messages. Errors are
// INVALID_ARGUMENT "<origin>:<line>: <key>: expected ..., found ...".
[[nodiscard]] StatusOr<NodeConfig> ParseNodeConfig(const std::string& text, const std::string& origin);

// Reads and parses a file; a missing file is NOT_FOUND naming it.
[[nodiscard]] StatusOr<NodeConfig> LoadNodeConfig(const std::string& path);

}  // namespace praefect::storagenode
