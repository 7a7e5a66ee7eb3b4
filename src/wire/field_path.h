#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace praefect::wire {

// A dotted field-number path as Gitaly's `target_repository_field` spells it:
// "1.1" is {1, 1}, field 1 of the field-1 message of the request. The method
// registry owns the numbers (as a std::vector<uint32_t>); the wire module
// only borrows them.
using FieldPath = std::span<const uint32_t>;

// Gitaly's deepest target path has three elements. The bound keeps recursion
// (which follows the path only, never the client's nesting) trivially small.
inline constexpr size_t kMaxPathLength = 16;

// protobuf's largest field number (FieldDescriptor::kMaxNumber).
inline constexpr uint32_t kMaxFieldNumber = (1u << 29) - 1;

// "1.1"; "(top level)" for an empty path.
std::string PathToString(FieldPath path);

// INTERNAL unless `path` has 1..kMaxPathLength elements, each a valid field
// number. A bad path is praefect's bug (the registry's), not the client's,
// hence not INVALID_ARGUMENT.
[[nodiscard]] Status CheckFieldPath(FieldPath path);

// INVALID_ARGUMENT for a message libprotobuf could not parse for its size
// alone (2 GiB and more); the scanner relies on sizes fitting an int.
[[nodiscard]] Status CheckMessageSize(std::string_view message);

// INTERNAL unless `value` is valid UTF-8, the rule proto3 `string` fields
// obey: a rewrite must not produce a message that fails to parse.
[[nodiscard]] Status CheckReplacement(std::string_view what, std::string_view value);

// Whether `bytes` is valid UTF-8 as libprotobuf judges it when parsing a
// proto3 `string` field (the same function, so the verdicts agree).
[[nodiscard]] bool IsValidUtf8(std::string_view bytes);

}  // namespace praefect::wire
