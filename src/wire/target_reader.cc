#include "wire/target_reader.h"

#include <string>

#include "wire/field_scanner.h"

namespace praefect::wire::internal {

namespace {

// Recursion follows the path only (depth <= kMaxPathLength), never the
// client's own nesting.
class Reader {
 public:
  Reader(FieldPath prefix, std::span<StringSlot> slots, TargetTally* tally)
      : prefix_(prefix), slots_(slots), tally_(tally) {}

  [[nodiscard]] Status Visit(std::string_view message, size_t base, size_t depth) {
    ++tally_->occurrences[depth];
    FieldScanner scanner(message, base);
    WireField field;
    while (!scanner.AtEnd()) {
      if (Status st = scanner.Next(&field); !st.ok()) return st;
      if (depth < prefix_.size()) {
        if (field.number != prefix_[depth]) continue;
        if (field.wire_type != kWireLengthDelimited) return NotAMessage(field, base, depth);
        if (Status st = Visit(field.payload, base + field.payload_begin, depth + 1); !st.ok()) return st;
        continue;
      }
      for (StringSlot& slot : slots_) {
        if (slot.number != field.number) continue;
        if (Status st = CheckString(field, base, slot.number); !st.ok()) return st;
        if (slot.check != nullptr) {
          if (Status st = slot.check(slot.what, field.payload); !st.ok()) return st;
        }
        ++slot.occurrences;
        slot.value = field.payload;
      }
    }
    return Status::Ok();
  }

 private:
  Status NotAMessage(const WireField& field, size_t base, size_t depth) const {
    return Malformed("field at path " + PathToString(prefix_.first(depth + 1)) + " has wire type " +
                         std::string(WireTypeName(field.wire_type)) + " where an embedded message is expected",
                     base + field.begin);
  }

  Status CheckString(const WireField& field, size_t base, uint32_t number) const {
    if (field.wire_type != kWireLengthDelimited) {
      return Malformed("field at path " + SlotPath(number) + " has wire type " +
                           std::string(WireTypeName(field.wire_type)) + " where a string is expected",
                       base + field.begin);
    }
    if (!IsValidUtf8(field.payload)) {
      return Malformed("string at path " + SlotPath(number) + " is not valid UTF-8", base + field.payload_begin);
    }
    return Status::Ok();
  }

  std::string SlotPath(uint32_t number) const {
    std::string path = prefix_.empty() ? std::string() : PathToString(prefix_) + ".";
    return path + std::to_string(number);
  }

  FieldPath prefix_;
  std::span<StringSlot> slots_;
  TargetTally* tally_;
};

}  // namespace

Status ReadTarget(std::string_view message, FieldPath prefix, std::span<StringSlot> slots, TargetTally* tally) {
  *tally = TargetTally{};
  for (StringSlot& slot : slots) {
    slot.occurrences = 0;
    slot.value = {};
  }
  return Reader(prefix, slots, tally).Visit(message, 0, 0);
}

}  // namespace praefect::wire::internal
