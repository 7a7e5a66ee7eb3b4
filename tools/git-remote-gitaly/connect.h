#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "remote_url.h"

namespace praefect::gitremote {

struct ConnectOptions {
  std::string token;         // GITALY_TOKEN; empty: no authorization metadata
  std::string git_protocol;  // for upload-pack: "version=2" or empty (v0)
  std::string gl_id;         // receive-pack only; Gitaly refuses an empty one
  std::string gl_username;
  std::string gl_repository;
  std::chrono::seconds connect_timeout{15};
};

// Serves `connect <service>` of gitremote-helpers(7): dials the remote, opens
// SSHUploadPack (git-upload-pack) or SSHReceivePack (git-receive-pack),
// answers git with the empty line, then copies fd 0 to the stream's stdin and
// the stream's stdout/stderr to fds 1/2 as the bytes arrive, until the call
// ends. Returns the exit code for the helper: the remote git's exit status,
// or 128 (after a message on stderr) when the call failed without one.
// REQUIRES: service is "git-upload-pack" or "git-receive-pack".
int Connect(const Remote& remote, std::string_view service, const ConnectOptions& options);

}  // namespace praefect::gitremote
