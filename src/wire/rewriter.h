#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status_or.h"
#include "wire/field_path.h"

// Reads and rewrites the first request message of a call without parsing
// it: only the messages along one field path are walked, everything else is
// copied through as bytes. Results agree with libprotobuf's parser: embedded
// messages that occur several times are merged, and of a string field that
// occurs several times the last occurrence wins.
//
// Errors: a malformed message (truncated or over-long varint, length past
// the end, invalid wire type, a group, a non-message on the path, a
// non-string or non-UTF-8 value where a string is read) is INVALID_ARGUMENT,
// "malformed protobuf message: <what> at byte offset <n>", to be returned to
// the client. A bad field path or replacement value is praefect's own bug
// and is INTERNAL.
//
// Limits the caller must know:
//  * Every field on the path must be a singular (not repeated) message field,
//    as Gitaly's target_repository_field always is: occurrences are merged,
//    never treated as list elements.
//  * oneofs are not modelled. When the path's message is a oneof member and a
//    sibling member follows it on the wire, libprotobuf drops the message
//    while this module still reads it. Harmless: the node parses the same
//    (rewritten) bytes, drops it too and refuses the request.
//  * Fields off the path are not examined; a node may still refuse a message
//    this module accepted (it would also have refused it unproxied).
//
// All functions are thread-safe (no shared state) and allocate only for
// error messages and for the rewritten output.
namespace praefect::wire {

// gitaly.Repository field numbers (shared.proto).
inline constexpr uint32_t kRepositoryStorageNameField = 2;
inline constexpr uint32_t kRepositoryRelativePathField = 3;
inline constexpr uint32_t kRepositoryObjectDirectoryField = 4;            // string
inline constexpr uint32_t kRepositoryAlternateObjectDirectoriesField = 5;  // repeated string

// The repository a request targets. The views point into the message passed
// to ReadRepository and live as long as its bytes.
struct RepositoryRef {
  // Whether the Repository message occurs at all (even empty). A request
  // without it gets INVALID_ARGUMENT "repository missing" from the caller;
  // proto3 cannot tell an empty string from an absent one, so a present
  // repository with no storage_name reads as "".
  bool present = false;
  std::string_view storage_name;
  std::string_view relative_path;
};

// Fields to set in the target repository; nullopt leaves a field as it is.
struct RepositoryRewrite {
  std::optional<std::string_view> storage_name;
  std::optional<std::string_view> relative_path;
};

// Reads the gitaly.Repository at `path` (registry form of
// target_repository_field: {1} or {1, 1}) of `message`. Its
// git_object_directory and every git_alternate_object_directories entry
// must pass ValidateObjectDirectory (wire/relative_path.h): INVALID_ARGUMENT
// otherwise. The relative path is returned unchecked: whether it may be
// empty is the caller's to say (see ValidateRelativePath).
// REQUIRES: `message` outlives the returned views.
[[nodiscard]] StatusOr<RepositoryRef> ReadRepository(std::string_view message, FieldPath path);

// Returns `message` with the Repository at `path` rewritten as parse →
// set_storage_name / set_relative_path → serialize would, bytes elsewhere
// kept as they were (see target_editor.h for the exact edits):
//  * an absent Repository (or absent message on the way to it) is created,
//    like mutable_repository(), but only if the rewrite sets something;
//  * when a field occurs several times, only the last occurrence is kept.
// With no field to set, returns `message` unchanged once it is validated.
// Rewrites if and only if ReadRepository succeeds on the same input.
[[nodiscard]] StatusOr<std::string> RewriteRepository(std::string_view message, FieldPath path,
                                                      const RepositoryRewrite& rewrite);

// The proto3 `string` field at `path` (e.g. {1}, the storage_name of a
// storage-scoped request such as AddNamespaceRequest): nullopt when the
// field, or a message on the way to it, does not occur. A parser would read
// "" in both cases; the distinction is only informative.
// REQUIRES: `message` outlives the returned view.
[[nodiscard]] StatusOr<std::optional<std::string_view>> ReadStringField(std::string_view message, FieldPath path);

// Returns `message` with the string field at `path` set to `value`, with
// the same rules as RewriteRepository (created when absent, only the last
// occurrence kept). Rewrites if and only if ReadStringField succeeds.
[[nodiscard]] StatusOr<std::string> RewriteStringField(std::string_view message, FieldPath path,
                                                       std::string_view value);

}  // namespace praefect::wire
