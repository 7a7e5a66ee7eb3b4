#include "protoregistry/path_fields.h"

namespace praefect::protoregistry {

std::span<const PathFieldEntry> KnownPathFields() {
  static constexpr PathFieldEntry kEntries[] = {
      // RenameRepositoryRequest.relative_path: where the repository goes.
      {"/gitaly.RepositoryService/RenameRepository", "2", "destination relative path"},
      // NamespaceService: directories under the storage root (removed from
      // Gitaly 15, still in the packaged protos and in older clients).
      {"/gitaly.NamespaceService/AddNamespace", "2", "namespace"},
      {"/gitaly.NamespaceService/RemoveNamespace", "2", "namespace"},
      {"/gitaly.NamespaceService/NamespaceExists", "2", "namespace"},
      {"/gitaly.NamespaceService/RenameNamespace", "2", "namespace to rename"},
      {"/gitaly.NamespaceService/RenameNamespace", "3", "new namespace"},
  };
  return kEntries;
}

}  // namespace praefect::protoregistry
