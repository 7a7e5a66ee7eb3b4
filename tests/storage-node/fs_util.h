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
bool PathExists(const std::string& path);

}  // namespace praefect::storagenode
