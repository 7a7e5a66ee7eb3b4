#include "wire/field_scanner.h"

#include <google/protobuf/wire_format_lite.h>

#include <climits>
#include <string>

namespace praefect::wire {

namespace {

using google::protobuf::internal::WireFormatLite;

// libprotobuf's parser (parse_context.h ReadTag/ReadSize) reads tags and
// lengths of at most 5 bytes; CodedInputStream alone would take 10. Holding
// to the parser's limit keeps "we accept" implying "libprotobuf accepts".
constexpr size_t kMaxTagOrLengthBytes = 5;
// ReadSize also refuses lengths this close to INT_MAX.
constexpr int kParserSlopBytes = 16;

std::string FieldText(uint32_t number) { return "field " + std::to_string(number); }

}  // namespace

std::string_view WireTypeName(uint32_t wire_type) {
  switch (wire_type) {
    case 0:
      return "varint";
    case 1:
      return "fixed64";
    case 2:
      return "length-delimited";
    case 3:
      return "start-group";
    case 4:
      return "end-group";
    case 5:
      return "fixed32";
    case 6:
      return "invalid wire type 6";
    default:
      return "invalid wire type 7";
  }
}

Status Malformed(std::string_view what, size_t offset) {
  std::string message = "malformed protobuf message: ";
  message.append(what);
  message.append(" at byte offset ");
  message.append(std::to_string(offset));
  return InvalidArgument(std::move(message));
}

FieldScanner::FieldScanner(std::string_view data, size_t base_offset)
    : data_(data),
      base_offset_(base_offset),
      in_(reinterpret_cast<const uint8_t*>(data.data()), static_cast<int>(data.size())) {}

Status FieldScanner::TagError(size_t begin) const {
  size_t i = begin;
  while (i < data_.size() && (static_cast<uint8_t>(data_[i]) & 0x80) != 0) ++i;
  const size_t absolute = base_offset_ + begin;
  if (i == data_.size()) return Malformed("truncated field tag", absolute);
  if (i - begin + 1 > kMaxTagOrLengthBytes) return Malformed("field tag longer than 5 bytes", absolute);
  return Malformed("field number 0 (not a valid field number)", absolute);
}

Status FieldScanner::Next(WireField* field) {
  const size_t begin = Position();
  const uint32_t tag = in_.ReadTagNoLastTag();
  if (tag == 0) return TagError(begin);
  const size_t value_begin = Position();
  if (value_begin - begin > kMaxTagOrLengthBytes) {
    return Malformed("field tag longer than 5 bytes", base_offset_ + begin);
  }
  const auto number = static_cast<uint32_t>(WireFormatLite::GetTagFieldNumber(tag));
  const auto wire_type = static_cast<uint32_t>(WireFormatLite::GetTagWireType(tag));
  if (number == 0) return Malformed("field number 0 (not a valid field number)", base_offset_ + begin);

  field->number = number;
  field->wire_type = wire_type;
  field->begin = begin;
  field->value_begin = value_begin;
  field->payload_begin = value_begin;
  field->tag_bytes = data_.substr(begin, value_begin - begin);
  field->payload = {};

  const size_t remaining = data_.size() - value_begin;
  switch (wire_type) {
    case WireFormatLite::WIRETYPE_VARINT: {
      uint64_t ignored;
      if (!in_.ReadVarint64(&ignored)) {
        return Malformed("varint value of " + FieldText(number) + " is truncated or longer than 10 bytes",
                         base_offset_ + value_begin);
      }
      break;
    }
    case WireFormatLite::WIRETYPE_FIXED64:
    case WireFormatLite::WIRETYPE_FIXED32: {
      const int width = wire_type == WireFormatLite::WIRETYPE_FIXED64 ? 8 : 4;
      if (remaining < static_cast<size_t>(width) || !in_.Skip(width)) {
        return Malformed(std::string(WireTypeName(wire_type)) + " value of " + FieldText(number) + " is truncated (" +
                             std::to_string(remaining) + " bytes left)",
                         base_offset_ + value_begin);
      }
      break;
    }
    case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
      int length = 0;
      if (!in_.ReadVarintSizeAsInt(&length)) {
        return Malformed("length of " + FieldText(number) + " is truncated or exceeds 2 GiB",
                         base_offset_ + value_begin);
      }
      const size_t payload_begin = Position();
      if (payload_begin - value_begin > kMaxTagOrLengthBytes || length > INT_MAX - kParserSlopBytes) {
        return Malformed("length of " + FieldText(number) + " is longer than 5 bytes or exceeds 2 GiB",
                         base_offset_ + value_begin);
      }
      const size_t left = data_.size() - payload_begin;
      if (static_cast<size_t>(length) > left || !in_.Skip(length)) {
        return Malformed(FieldText(number) + " declares " + std::to_string(length) + " bytes but only " +
                             std::to_string(left) + " remain in its enclosing message",
                         base_offset_ + value_begin);
      }
      field->payload_begin = payload_begin;
      field->payload = data_.substr(payload_begin, static_cast<size_t>(length));
      break;
    }
    case WireFormatLite::WIRETYPE_START_GROUP:
    case WireFormatLite::WIRETYPE_END_GROUP:
      return Malformed(
          FieldText(number) + " is a group (" + std::string(WireTypeName(wire_type)) + "); groups are not supported",
          base_offset_ + begin);
    default:
      return Malformed(FieldText(number) + " has " + std::string(WireTypeName(wire_type)), base_offset_ + begin);
  }
  field->end = Position();
  return Status::Ok();
}

}  // namespace praefect::wire
