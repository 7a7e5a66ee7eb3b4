#pragma once

#include <string>

#include "common/status_or.h"
#include "shared.pb.h"

namespace praefect::storagenode {

// Resolves the gitaly.Repository of a request to the absolute path of its
// bare repository on this node. Thread-safe; implementations are immutable.
class RepoLocator {
 public:
  virtual ~RepoLocator() = default;

  // INVALID_ARGUMENT naming the storage when the node has no such storage;
  // INVALID_ARGUMENT when relative_path is empty, absolute, or escapes the
  // storage (".." components). Does not check that the repository exists.
  [[nodiscard]] virtual StatusOr<std::string> Locate(const gitaly::Repository& repo) const = 0;
};

}  // namespace praefect::storagenode
