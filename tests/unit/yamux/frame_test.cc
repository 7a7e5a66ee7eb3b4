// The 12-byte yamux header: layout on the wire and the names in messages.
#include "yamux/frame.h"

#include <string>

#include "test_support.h"

using praefect::yamux::AppendHeader;
using praefect::yamux::DecodeHeader;
using praefect::yamux::DescribeHeader;
using praefect::yamux::FlagNames;
using praefect::yamux::FrameHeader;
using praefect::yamux::FrameType;
using praefect::yamux::FrameTypeName;
using praefect::yamux::GoAwayCodeName;
using praefect::yamux::HexBytes;
using praefect::yamux::kFlagAck;
using praefect::yamux::kFlagFin;
using praefect::yamux::kFlagSyn;
using praefect::yamux::kHeaderSize;

namespace {

void test_header_layout_is_big_endian(void**) {
  std::string out;
  AppendHeader(FrameType::kWindowUpdate, kFlagSyn | kFlagFin, 0x01020304, 0xa0b0c0d0, &out);
  assert_int_equal(out.size(), kHeaderSize);
  assert_true(HexBytes(out) == "00 01 00 05 01 02 03 04 a0 b0 c0 d0");
}

void test_decode_reads_what_encode_wrote(void**) {
  std::string out;
  AppendHeader(FrameType::kPing, kFlagAck, 0, 0xfffffffe, &out);
  const FrameHeader h = DecodeHeader(out.data());
  assert_int_equal(h.version, 0);
  assert_int_equal(h.type, 2);
  assert_int_equal(h.flags, kFlagAck);
  assert_int_equal(h.stream_id, 0);
  assert_int_equal(h.length, 0xfffffffe);
  // High bits survive (no sign extension of char).
  const char raw[kHeaderSize] = {'\xff', '\x80', '\xff', '\xff', '\x80', 0, 0, 1, '\xff', '\xff', '\xff', '\xff'};
  const FrameHeader r = DecodeHeader(raw);
  assert_int_equal(r.version, 0xff);
  assert_int_equal(r.type, 0x80);
  assert_int_equal(r.flags, 0xffff);
  assert_int_equal(r.stream_id, 0x80000001u);
  assert_int_equal(r.length, 0xffffffffu);
}

void test_names_for_messages(void**) {
  assert_true(FrameTypeName(0) == "Data");
  assert_true(FrameTypeName(3) == "GoAway");
  assert_true(FrameTypeName(9) == "type 9");
  assert_true(FlagNames(0) == "none");
  assert_true(FlagNames(kFlagSyn | kFlagAck) == "SYN|ACK");
  assert_true(FlagNames(0x8 | 0x40) == "RST|0x40");
  assert_true(FlagNames(0x1000) == "0x1000");
  assert_true(GoAwayCodeName(0) == "normal");
  assert_true(GoAwayCodeName(1) == "protocol error");
  assert_true(GoAwayCodeName(7) == "code 7");
  FrameHeader h;
  h.type = 0;
  h.flags = kFlagFin;
  h.stream_id = 3;
  h.length = 10;
  assert_true(DescribeHeader(h) == "Data FIN stream 3 length 10");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header_layout_is_big_endian),
      cmocka_unit_test(test_decode_reads_what_encode_wrote),
      cmocka_unit_test(test_names_for_messages),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
