#pragma once

#include <map>
#include <string>
#include <vector>

#include "node_config.h"
#include "repo_locator.h"

namespace praefect::storagenode {

// RepoLocator over the node's configured storages: joins the storage path
// and a lexically checked relative path. Immutable, thread-safe.
class StorageRepoLocator : public RepoLocator {
 public:
  explicit StorageRepoLocator(const std::vector<StorageConfig>& storages);

  [[nodiscard]] StatusOr<std::string> Locate(const gitaly::Repository& repo) const override;

  // The directory of a storage; INVALID_ARGUMENT naming it when unknown.
  [[nodiscard]] StatusOr<std::string> StoragePath(const std::string& storage_name) const;

 private:
  std::map<std::string, std::string> paths_;
};

// Checks a relative path: non-empty, not absolute, no "." or ".." component
// that leaves the storage. Returns the path with redundant "/" and "."
// removed.
[[nodiscard]] StatusOr<std::string> CleanRelativePath(const std::string& relative_path);

}  // namespace praefect::storagenode
