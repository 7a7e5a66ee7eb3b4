#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"

// The one validation of the path-like strings a client sends: a repository's
// relative path (target and additional repositories), the destination of
// RenameRepository, the namespace names of storage-scoped calls, and the
// object directories of a quarantined repository. It runs before praefect
// routes, registers, logs or forwards anything, so that no later step (the
// database, the nodes' disks, log lines, `dataloss` output) ever sees a path
// a client could use to escape the storage or to impersonate another path.
//
// All functions are pure and thread-safe.
namespace praefect::wire {

// Longest relative path accepted, in bytes. Gitaly's own limit is the file
// system's (PATH_MAX, 4096 with the storage prefix); praefect stores the
// path in unique PostgreSQL indexes, whose entries must stay under 2704
// bytes, and 2048 leaves room for the virtual storage's name.
inline constexpr size_t kMaxRelativePathBytes = 2048;
// Longest path segment: the file system's NAME_MAX.
inline constexpr size_t kMaxPathSegmentBytes = 255;

// Checks a path relative to a storage (`what` names it in the message:
// "relative path", "namespace", ...). Gitaly's rules, stricter where a
// router that keys its metadata by the path's text must be:
//   * not empty;
//   * at most kMaxRelativePathBytes, each segment at most kMaxPathSegmentBytes;
//   * no NUL byte, no control character (0x01-0x1f, 0x7f), valid UTF-8;
//   * not absolute;
//   * never above the storage's root ("relative path escapes root
//     directory", Gitaly's words), and not the root itself;
//   * in clean form: no empty, "." or ".." segment, no trailing "/" (Gitaly
//     would clean "a/./b" to "a/b"; praefect would register two names for
//     one repository);
//   * not inside Gitaly's internal directory "+gitaly".
// INVALID_ARGUMENT naming the rule, the offending part and the path (quoted
// safely, see common/quote.h); OK otherwise.
[[nodiscard]] Status ValidateRelativePath(std::string_view what, std::string_view path);

// Checks git_object_directory or one of git_alternate_object_directories of
// a Repository: no NUL, no control character, valid UTF-8, at most
// kMaxRelativePathBytes. ".." is allowed: a quarantine directory lies
// outside the repository (under the storage's +gitaly/tmp) and is given
// relative to it; the node, which knows where the repository is, checks
// that it stays inside the storage.
[[nodiscard]] Status ValidateObjectDirectory(std::string_view what, std::string_view path);

}  // namespace praefect::wire
