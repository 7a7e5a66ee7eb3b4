#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status_or.h"
#include "nodes/node_set.h"

// gitaly.ServerService/ServerInfo as praefect answers it: one storage per
// virtual storage, so GitLab sees what it configured.
namespace praefect::services {

// Asks every node (in parallel, each bounded by `node_timeout`) and returns
// the serialized ServerInfoResponse: for each virtual storage one
// StorageStatus named after it, readable when a node that answered can
// read, writeable when the primary can write, fs_type of the primary, and a
// filesystem id derived from the virtual storage's name (stable across
// praefects and restarts). server_version and git_version are those of the
// first node that answered. Nodes that do not answer are logged and
// skipped. Blocks up to `node_timeout`: call it off gRPC's threads.
StatusOr<std::string> AnswerServerInfo(const nodes::NodeSet& nodes, std::chrono::milliseconds node_timeout);

// A UUID (RFC 9562 layout, version 8) from the SHA-256 of `name`.
std::string DeriveFilesystemId(std::string_view name);

}  // namespace praefect::services
