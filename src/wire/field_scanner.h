#pragma once

#include <google/protobuf/io/coded_stream.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace praefect::wire {

// Wire type numbers (WireFormatLite::WireType), kept as plain integers here so
// that this header does not pull libprotobuf into every includer.
inline constexpr uint32_t kWireVarint = 0;
inline constexpr uint32_t kWireFixed64 = 1;
inline constexpr uint32_t kWireLengthDelimited = 2;
inline constexpr uint32_t kWireFixed32 = 5;

// One field of a serialized message, as offsets into the scanned bytes.
struct WireField {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  size_t begin = 0;          // first byte of the tag
  size_t value_begin = 0;    // first byte after the tag
  size_t payload_begin = 0;  // length-delimited: first byte after the length
  size_t end = 0;            // one past the last byte of the field
  // The tag exactly as it was spelled on the wire (it may be a non-minimal
  // varint); a rewrite copies it rather than re-encoding it.
  std::string_view tag_bytes;
  // Length-delimited fields only: the bytes the length prefix covers.
  std::string_view payload;
};

// Walks the fields of ONE serialized message, without descending into
// embedded messages, and reports each field's extent. Framing is checked
// exactly as strictly as libprotobuf's parser checks it (tags and lengths of
// at most 5 bytes, lengths within the enclosing message, no field number 0,
// no wire types 6 and 7), so that bytes this scanner accepts are bytes
// libprotobuf accepts. Groups (wire types 3 and 4) are refused: no Gitaly
// request uses them and supporting them would mean unbounded recursion.
//
// Not thread-safe; cheap to construct, one per message occurrence.
class FieldScanner {
 public:
  // `data` must outlive the scanner and every WireField it returns.
  // `base_offset` is the position of data[0] within the whole request, so
  // that errors name the byte a client (or a hex dump) can find.
  // REQUIRES: data.size() <= INT_MAX (checked once at the API boundary).
  FieldScanner(std::string_view data, size_t base_offset);

  FieldScanner(const FieldScanner&) = delete;
  FieldScanner& operator=(const FieldScanner&) = delete;

  bool AtEnd() const { return Position() == data_.size(); }

  // Reads the next field into *field. On malformed input returns
  // INVALID_ARGUMENT naming the problem and its absolute byte offset; the
  // scanner must not be used afterwards.
  // REQUIRES: !AtEnd()
  [[nodiscard]] Status Next(WireField* field);

  std::string_view data() const { return data_; }
  size_t base_offset() const { return base_offset_; }

 private:
  size_t Position() const { return static_cast<size_t>(in_.CurrentPosition()); }
  // Explains a tag that CodedInputStream refused (it reports every failure
  // as tag 0): truncated, longer than a varint may be, or really zero.
  Status TagError(size_t begin) const;

  std::string_view data_;
  size_t base_offset_;
  google::protobuf::io::CodedInputStream in_;
};

// "varint", "length-delimited", ... for error messages.
std::string_view WireTypeName(uint32_t wire_type);

// The INVALID_ARGUMENT every malformed-input error uses, so that all of them
// read alike: "malformed protobuf message: <what> at byte offset <n>".
Status Malformed(std::string_view what, size_t offset);

}  // namespace praefect::wire
