#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/status_or.h"
#include "wire/field_path.h"
#include "wire/target_reader.h"

namespace praefect::wire::internal {

// Most string slots one rewrite handles (Repository uses two).
inline constexpr size_t kMaxSlots = 4;

// Returns `message` with the slots' replacements applied. Parsing the result
// gives what parsing `message`, setting each replaced field and serializing
// would give (compared as parsed messages):
//  * the last occurrence in wire order of a replaced field, the one a parser
//    keeps, is edited in place; earlier occurrences, which a parser would
//    overwrite, are dropped: repeating a field cannot make praefect repeat
//    its replacement (no amplification) and the old value does not linger;
//  * a replaced field that never occurs is appended to the last occurrence
//    of the target message; when the target (or an ancestor on the path) is
//    absent, the missing chain of messages is appended to the last
//    occurrence of the deepest ancestor that is present, as
//    mutable_x()->set_y() would create it;
//  * every other byte is copied through in order; the length prefixes of
//    enclosing messages are re-encoded (minimally) when their size changes.
// Validates exactly what ReadTarget validates (it calls it first), so a
// request rewrites if and only if it reads. Without any replacement the
// result equals `message`.
// REQUIRES: as ReadTarget; slots.size() <= kMaxSlots; replacements valid
// UTF-8 (CheckReplacement).
[[nodiscard]] StatusOr<std::string> RewriteTarget(std::string_view message, FieldPath prefix,
                                                  std::span<StringSlot> slots);

}  // namespace praefect::wire::internal
