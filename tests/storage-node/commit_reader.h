#pragma once

#include <string>

#include "common/status_or.h"
#include "git_command.h"
#include "shared.pb.h"

namespace praefect::storagenode {

// Parses the raw text of a commit object (`git cat-file commit`) into a
// gitaly.GitCommit with id `oid`, as Gitaly's catfile parser does: subject is
// the first line of the message, body the whole message.
[[nodiscard]] StatusOr<gitaly::GitCommit> ParseCommit(const std::string& oid, const std::string& raw);

// Reads and parses commit `oid` of the repository at `repo_path`.
[[nodiscard]] StatusOr<gitaly::GitCommit> ReadCommit(const GitEnv& env, const std::string& repo_path,
                                                    const std::string& oid);

}  // namespace praefect::storagenode
