#pragma once

#include <string>

#include "common/status_or.h"

namespace praefect::storagenode {

// Small filesystem helpers for the node's atomic repository operations.

// mkdir -p.
[[nodiscard]] Status MakeDirs(const std::string& path, int mode = 0755);
// rm -rf; missing is fine.
[[nodiscard]] Status RemoveTree(const std::string& path);
// fsync of a directory, so a rename in it survives a crash.
void SyncDir(const std::string& dir);
// The node's scratch directory in a storage (`<storage>/+gitaly/tmp`), created
// on demand, and a fresh unique directory in it.
[[nodiscard]] StatusOr<std::string> MakeTempDir(const std::string& storage_path, const std::string& prefix);
std::string Dirname(const std::string& path);

// Publishes a repository built in the scratch directory: creates the parent
// of `path`, fsyncs `staged`, renames it to `path` (atomic: readers see no
// repository or a complete one) and fsyncs the parent. When `path` exists
// already (a concurrent creation won) the result is ALREADY_EXISTS with
// `exists_message`; other failures are INTERNAL prefixed with `what`.
[[nodiscard]] Status MoveIntoPlace(const std::string& staged, const std::string& path, const std::string& what,
                                   const std::string& exists_message);
bool PathExists(const std::string& path);

}  // namespace praefect::storagenode
