#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/status.h"
#include "wire/field_path.h"

// The engine under the public API (wire/rewriter.h): find the message at a
// path, with protobuf's merge semantics, and the string fields inside it.
namespace praefect::wire::internal {

// One string field of the target message.
struct StringSlot {
  uint32_t number = 0;
  // Rewrite input: the new value, or nullopt to leave the field untouched.
  std::optional<std::string_view> replacement;
  // Optional: run on every occurrence's value (after the UTF-8 check); its
  // error fails the read. `what` names the field in its message.
  Status (*check)(std::string_view what, std::string_view value) = nullptr;
  std::string_view what;
  // Read results. `value` is the last occurrence in wire order, which is what
  // libprotobuf keeps; it views the request bytes.
  uint32_t occurrences = 0;
  std::string_view value;
};

// How often the message at each depth of the path occurs on the wire
// (occurrences[0] is the request itself, always 1). A parser merges repeated
// occurrences of a singular message field into one message, so "present" is
// "occurs at least once".
struct TargetTally {
  std::array<uint32_t, kMaxPathLength + 1> occurrences{};
};

// Walks every occurrence of the message at `prefix` (all of them: the parser
// merges them, so a field's last occurrence in wire order wins) and records
// the slots' values. Checks the framing of every message on the path, that
// path fields are length-delimited, and that every occurrence of a slot field
// is a length-delimited, valid UTF-8 string, as parsing a proto3 `string`
// would. Fields off the path are skipped unexamined.
// REQUIRES: CheckMessageSize(message) and prefix.size() <= kMaxPathLength;
// slot numbers distinct; `message` outlives the slots' values.
[[nodiscard]] Status ReadTarget(std::string_view message, FieldPath prefix, std::span<StringSlot> slots,
                                TargetTally* tally);

}  // namespace praefect::wire::internal
