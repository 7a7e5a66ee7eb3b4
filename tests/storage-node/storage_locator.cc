#include "storage_locator.h"

namespace praefect::storagenode {

StorageRepoLocator::StorageRepoLocator(const std::vector<StorageConfig>& storages) {
  for (const auto& s : storages) {
    std::string p = s.path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    paths_[s.name] = p;
  }
}

StatusOr<std::string> StorageRepoLocator::StoragePath(const std::string& storage_name) const {
  auto it = paths_.find(storage_name);
  if (it == paths_.end())
    return InvalidArgument("GetStorageByName: no such storage: \"" + storage_name + "\"");
  return it->second;
}

StatusOr<std::string> CleanRelativePath(const std::string& relative_path) {
  if (relative_path.empty()) return InvalidArgument("GetPath: relative path missing");
  if (relative_path[0] == '/')
    return InvalidArgument("GetRepoPath: relative path is absolute: \"" + relative_path + "\"");
  std::string clean;
  size_t start = 0;
  while (start <= relative_path.size()) {
    size_t end = relative_path.find('/', start);
    if (end == std::string::npos) end = relative_path.size();
    std::string part = relative_path.substr(start, end - start);
    start = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..")
      return InvalidArgument("GetRepoPath: relative path escapes root directory: \"" + relative_path + "\"");
    if (part.find('\0') != std::string::npos)
      return InvalidArgument("GetRepoPath: relative path contains a NUL byte");
    if (!clean.empty()) clean += '/';
    clean += part;
  }
  if (clean.empty()) return InvalidArgument("GetRepoPath: relative path names the storage root: \"" +
                                            relative_path + "\"");
  // The node keeps its own state there; repositories may not live in it.
  if (clean == "+gitaly" || clean.rfind("+gitaly/", 0) == 0)
    return InvalidArgument("GetRepoPath: relative path is in the node's internal directory: \"" +
                           relative_path + "\"");
  return clean;
}

StatusOr<std::string> StorageRepoLocator::Locate(const gitaly::Repository& repo) const {
  auto storage = StoragePath(repo.storage_name());
  if (!storage.ok()) return storage.status();
  auto rel = CleanRelativePath(repo.relative_path());
  if (!rel.ok()) return rel.status();
  return *storage + "/" + *rel;
}

}  // namespace praefect::storagenode
