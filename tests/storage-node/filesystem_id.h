#pragma once

#include <string>

#include "common/status_or.h"

namespace praefect::storagenode {

// A storage's filesystem id, as Gitaly keeps it: a random UUID in
// `<storage>/.gitaly-metadata` as {"gitaly_filesystem_id":"<uuid>"}, written
// once (atomically, by rename) and read back on every later start, so two
// nodes sharing one directory report one id.
[[nodiscard]] StatusOr<std::string> ReadOrCreateFilesystemId(const std::string& storage_path);

// The filesystem type name of a path ("ext4", "tmpfs", ...; "unknown").
std::string FilesystemType(const std::string& path);

}  // namespace praefect::storagenode
