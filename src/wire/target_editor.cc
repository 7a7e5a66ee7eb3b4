#include "wire/target_editor.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <array>
#include <cstdint>

#include "wire/field_scanner.h"

namespace praefect::wire::internal {

namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

// The editor writes every message twice over: once into a CountingSink to
// learn its new size (which the enclosing length prefix must state first),
// then for real. One template, so the two can never disagree.
struct CountingSink {
  static constexpr bool kCounting = true;
  void Append(std::string_view bytes) { size += bytes.size(); }
  void Varint(uint64_t value) { size += CodedOutputStream::VarintSize64(value); }
  size_t size = 0;
};

struct StringSink {
  static constexpr bool kCounting = false;
  void Append(std::string_view bytes) { out->append(bytes); }
  void Varint(uint64_t value) {
    uint8_t buffer[10];
    const uint8_t* end = CodedOutputStream::WriteVarint64ToArray(value, buffer);
    out->append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(end - buffer));
  }
  std::string* out;
};

// Which occurrence of each path message and of each slot field the walk has
// reached. Copied to size a sub-message without advancing the real walk.
struct Cursor {
  std::array<uint32_t, kMaxPathLength + 1> depth_index{};
  std::array<uint32_t, kMaxSlots> slot_index{};
};

size_t LengthDelimitedTagSize(uint32_t number) {
  return CodedOutputStream::VarintSize32(
      WireFormatLite::MakeTag(static_cast<int>(number), WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
}

constexpr size_t kNoInsertion = static_cast<size_t>(-1);

class Editor {
 public:
  Editor(FieldPath prefix, std::span<const StringSlot> slots, const TargetTally& tally)
      : prefix_(prefix), slots_(slots), tally_(tally) {
    // What no occurrence provides must be added, once, at the end of the
    // merged message: the deepest message on the path that exists.
    size_t inner = 0;
    bool missing = false;
    for (const StringSlot& slot : slots_) {
      if (!slot.replacement || slot.occurrences > 0) continue;
      missing = true;
      inner += LengthDelimitedTagSize(slot.number) + CodedOutputStream::VarintSize64(slot.replacement->size()) +
               slot.replacement->size();
    }
    if (!missing) return;
    insert_depth_ = 0;
    while (insert_depth_ < prefix_.size() && tally_.occurrences[insert_depth_ + 1] > 0) ++insert_depth_;
    chain_size_[prefix_.size()] = inner;
    for (size_t d = prefix_.size(); d-- > insert_depth_;) {
      chain_size_[d] =
          LengthDelimitedTagSize(prefix_[d]) + CodedOutputStream::VarintSize64(chain_size_[d + 1]) + chain_size_[d + 1];
    }
  }

  size_t InsertionSize() const { return insert_depth_ == kNoInsertion ? 0 : chain_size_[insert_depth_]; }

  template <class Sink>
  [[nodiscard]] Status Emit(std::string_view message, size_t base, size_t depth, Cursor& cursor, Sink& sink) const {
    const uint32_t index = cursor.depth_index[depth]++;
    FieldScanner scanner(message, base);
    WireField field;
    size_t copied_to = 0;  // bytes before this offset are already in the sink
    auto copy_through = [&](size_t upto) {
      if (upto > copied_to) sink.Append(message.substr(copied_to, upto - copied_to));
    };
    while (!scanner.AtEnd()) {
      if (Status st = scanner.Next(&field); !st.ok()) return st;
      if (depth < prefix_.size()) {
        if (field.number != prefix_[depth]) continue;
        if (field.wire_type != kWireLengthDelimited) return Internal("wire: path field changed between passes");
        copy_through(field.begin);
        sink.Append(field.tag_bytes);
        const size_t payload_base = base + field.payload_begin;
        if constexpr (Sink::kCounting) {
          const size_t before = sink.size;
          if (Status st = Emit(field.payload, payload_base, depth + 1, cursor, sink); !st.ok()) return st;
          sink.Varint(sink.size - before);
        } else {
          Cursor probe = cursor;
          CountingSink counter;
          if (Status st = Emit(field.payload, payload_base, depth + 1, probe, counter); !st.ok()) return st;
          sink.Varint(counter.size);
          if (Status st = Emit(field.payload, payload_base, depth + 1, cursor, sink); !st.ok()) return st;
        }
        copied_to = field.end;
        continue;
      }
      for (size_t s = 0; s < slots_.size(); ++s) {
        const StringSlot& slot = slots_[s];
        if (slot.number != field.number || !slot.replacement) continue;
        const uint32_t nth = cursor.slot_index[s]++;
        copy_through(field.begin);
        if (nth + 1 == slot.occurrences) {  // the occurrence a parser keeps
          sink.Append(field.tag_bytes);
          sink.Varint(slot.replacement->size());
          sink.Append(*slot.replacement);
        }
        copied_to = field.end;
      }
    }
    copy_through(message.size());
    if (depth == insert_depth_ && index + 1 == tally_.occurrences[depth]) EmitInsertion(sink);
    return Status::Ok();
  }

 private:
  template <class Sink>
  void EmitInsertion(Sink& sink) const {
    for (size_t d = insert_depth_; d < prefix_.size(); ++d) {
      WriteTag(prefix_[d], sink);
      sink.Varint(chain_size_[d + 1]);
    }
    for (const StringSlot& slot : slots_) {
      if (!slot.replacement || slot.occurrences > 0) continue;
      WriteTag(slot.number, sink);
      sink.Varint(slot.replacement->size());
      sink.Append(*slot.replacement);
    }
  }

  template <class Sink>
  static void WriteTag(uint32_t number, Sink& sink) {
    sink.Varint(WireFormatLite::MakeTag(static_cast<int>(number), WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  }

  FieldPath prefix_;
  std::span<const StringSlot> slots_;
  const TargetTally& tally_;
  size_t insert_depth_ = kNoInsertion;
  // chain_size_[d]: bytes the inserted chain adds inside the depth-d message.
  std::array<size_t, kMaxPathLength + 1> chain_size_{};
};

}  // namespace

StatusOr<std::string> RewriteTarget(std::string_view message, FieldPath prefix, std::span<StringSlot> slots) {
  if (slots.size() > kMaxSlots) return Internal("wire: too many string fields in one rewrite");
  TargetTally tally;
  if (Status st = ReadTarget(message, prefix, slots, &tally); !st.ok()) return st;

  size_t growth = 0;
  bool any = false;
  for (const StringSlot& slot : slots) {
    if (!slot.replacement) continue;
    any = true;
    // The value with its tag and length, and up to 5 more length bytes in
    // each message enclosing it.
    growth += slot.replacement->size() + 16 + 5 * prefix.size();
  }
  if (!any) return std::string(message);

  const Editor editor(prefix, slots, tally);
  std::string out;
  // An upper bound, so that the output is allocated once: dropping earlier
  // occurrences only shrinks the message.
  out.reserve(message.size() + growth + editor.InsertionSize() + 5 * (prefix.size() + 1));
  StringSink sink{&out};
  Cursor cursor;
  if (Status st = editor.Emit(message, 0, 0, cursor, sink); !st.ok()) return st;
  return out;
}

}  // namespace praefect::wire::internal
