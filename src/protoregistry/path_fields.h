#pragma once

#include <span>
#include <string_view>

// String fields of a request that name a path relative to a storage without
// being a gitaly.Repository: the destination of RenameRepository and the
// namespace names of NamespaceService. praefect validates them exactly like
// a repository's relative path (wire/relative_path.h) before routing, and
// forwards them as they are. Compiled into praefect; Registry::Create
// attaches them to MethodInfo::path_fields and fails if an entry names a
// method it does not know or, for packaged methods, a field that is not a
// singular string.
namespace praefect::protoregistry {

struct PathFieldEntry {
  std::string_view method;  // "/gitaly.RepositoryService/RenameRepository"
  std::string_view field;   // dotted field path, "2"
  std::string_view what;    // how messages name it: "destination relative path"
};

// Static storage; never changes.
std::span<const PathFieldEntry> KnownPathFields();

}  // namespace praefect::protoregistry
