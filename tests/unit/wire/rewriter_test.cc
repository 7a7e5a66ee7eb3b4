#include "wire/rewriter.h"

#include <sys/mman.h>

#include <cstdint>
#include <string>
#include <vector>

#include "test_support.h"

using praefect::StatusCode;
using praefect::wire::ReadRepository;
using praefect::wire::ReadStringField;
using praefect::wire::RepositoryRewrite;
using praefect::wire::RewriteRepository;
using praefect::wire::RewriteStringField;

namespace {

// A hand-written encoder, independent of the code under test, so that
// expected bytes are spelled out rather than computed by the same logic.
std::string V(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}
std::string Len(uint32_t field, std::string_view payload) {
  return V((uint64_t{field} << 3) | 2) + V(payload.size()) + std::string(payload);
}
std::string Int(uint32_t field, uint64_t value) { return V(uint64_t{field} << 3) + V(value); }
std::string Fixed32(uint32_t field) { return V((uint64_t{field} << 3) | 5) + std::string("\x01\x02\x03\x04", 4); }
std::string Fixed64(uint32_t field) { return V((uint64_t{field} << 3) | 1) + std::string(8, '\x07'); }
std::string Repo(std::string_view storage, std::string_view relative) { return Len(2, storage) + Len(3, relative); }

const std::vector<uint32_t> kTop = {1};
const std::vector<uint32_t> kNested = {1, 1};

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

void ExpectBytes(const std::string& got, const std::string& want) {
  if (got != want) fail_msg("bytes differ:\n got  %s\n want %s", Hex(got).c_str(), Hex(want).c_str());
}

void ExpectRepo(std::string_view message, const std::vector<uint32_t>& path, bool present, std::string_view storage,
                std::string_view relative) {
  auto ref = ReadRepository(message, path);
  assert_status_ok(ref.status());
  expect_that(ref->present == present, present ? "the repository to be present" : "the repository to be absent");
  expect_that(ref->storage_name == storage,
              "storage_name " + std::string(storage) + ", got " + std::string(ref->storage_name));
  expect_that(ref->relative_path == relative,
              "relative_path " + std::string(relative) + ", got " + std::string(ref->relative_path));
}

std::string Rewrite(std::string_view message, const std::vector<uint32_t>& path, RepositoryRewrite rewrite) {
  auto out = RewriteRepository(message, path, rewrite);
  assert_status_ok(out.status());
  return *out;
}

// Both the reader and the rewriter must refuse `message` with
// INVALID_ARGUMENT, naming `what` and the byte offset.
void ExpectMalformed(std::string_view message, const std::vector<uint32_t>& path, const std::string& what,
                     size_t offset) {
  const std::string at = "at byte offset " + std::to_string(offset);
  auto check = [&](const praefect::Status& st, const char* who) {
    if (st.ok()) fail_msg("%s accepted malformed %s", who, Hex(message).c_str());
    if (st.code() != StatusCode::kInvalidArgument || st.message().find(what) == std::string::npos ||
        st.message().find(at) == std::string::npos) {
      fail_msg("%s: got \"%s\", want INVALID_ARGUMENT mentioning \"%s\" and \"%s\"", who, st.ToString().c_str(),
               what.c_str(), at.c_str());
    }
  };
  check(ReadRepository(message, path).status(), "ReadRepository");
  check(RewriteRepository(message, path, {.storage_name = "s", .relative_path = {}}).status(), "RewriteRepository");
  check(RewriteRepository(message, path, {}).status(), "RewriteRepository without changes");
}

}  // namespace

static void test_reads_top_level_repository(void**) {
  ExpectRepo(Len(1, Repo("default", "@hashed/ab/cd.git")), kTop, true, "default", "@hashed/ab/cd.git");
  // Fields in any order, among others.
  ExpectRepo(Int(7, 1) + Len(1, Len(3, "r.git") + Int(9, 5) + Len(2, "s")) + Len(2, "x"), kTop, true, "s", "r.git");
}

static void test_reads_missing_and_empty_repository(void**) {
  ExpectRepo("", kTop, false, "", "");
  ExpectRepo(Len(2, Repo("other", "o.git")) + Int(3, 1), kTop, false, "", "");
  ExpectRepo(Len(1, ""), kTop, true, "", "");
  ExpectRepo(Len(1, Len(3, "only-path.git")), kTop, true, "", "only-path.git");
  // Nested: the header is present, the repository inside is not.
  ExpectRepo(Len(1, Len(2, "user")), kNested, false, "", "");
  ExpectRepo(Len(1, Len(1, "")), kNested, true, "", "");
}

static void test_reads_nested_repository(void**) {
  const std::string header = Len(2, "user") + Len(1, Repo("nested", "n.git")) + Len(3, "branch");
  ExpectRepo(Len(1, header), kNested, true, "nested", "n.git");
  const std::vector<uint32_t> deep = {4, 2, 1};
  ExpectRepo(Int(1, 3) + Len(4, Len(2, Len(1, Repo("deep", "d.git")))), deep, true, "deep", "d.git");
  // Large field numbers take multi-byte tags.
  const std::vector<uint32_t> big = {300, 70000};
  ExpectRepo(Len(300, Len(70000, Repo("big", "b.git"))), big, true, "big", "b.git");
}

static void test_reads_merged_occurrences(void**) {
  // A parser merges the two repository occurrences; the last value wins.
  ExpectRepo(Len(1, Repo("first", "p.git")) + Int(2, 1) + Len(1, Len(3, "q.git")), kTop, true, "first", "q.git");
  ExpectRepo(Len(1, Len(2, "a") + Len(2, "b") + Len(2, "c")), kTop, true, "c", "");
  // Merging happens at every level: the header occurs twice, each holding
  // part of the repository.
  ExpectRepo(Len(1, Len(1, Len(2, "s1"))) + Len(1, Len(1, Len(3, "r2"))), kNested, true, "s1", "r2");
  // An explicit empty string after a value wins too.
  ExpectRepo(Len(1, Len(2, "set") + Len(2, "")), kTop, true, "", "");
}

static void test_rewrites_in_place(void**) {
  const std::string before = Len(1, Repo("virtual", "r.git")) + Int(2, 1);
  ExpectBytes(Rewrite(before, kTop, {.storage_name = "gitaly-1", .relative_path = "@cluster/1/2.git"}),
              Len(1, Repo("gitaly-1", "@cluster/1/2.git")) + Int(2, 1));
  ExpectBytes(Rewrite(before, kTop, {.storage_name = "g", .relative_path = {}}),
              Len(1, Repo("g", "r.git")) + Int(2, 1));
  ExpectBytes(Rewrite(before, kTop, {.storage_name = {}, .relative_path = "x"}),
              Len(1, Repo("virtual", "x")) + Int(2, 1));
  ExpectBytes(Rewrite(before, kTop, {.storage_name = "", .relative_path = {}}), Len(1, Repo("", "r.git")) + Int(2, 1));
}

static void test_keeps_unknown_fields_and_order(void**) {
  const std::string repo_before = Fixed32(99) + Len(3, "r.git") + Len(4, "objects") + Len(2, "virtual") +
                                  Int(100, 300) + Len(7777, "unknown") + Fixed64(5000);
  const std::string repo_after = Fixed32(99) + Len(3, "r.git") + Len(4, "objects") + Len(2, "physical-node") +
                                 Int(100, 300) + Len(7777, "unknown") + Fixed64(5000);
  const std::string head = Int(15, 1) + Fixed64(3);
  const std::string tail = Len(2, Repo("source", "s.git")) + Len(123456, std::string(10, '\xff'));
  ExpectBytes(Rewrite(head + Len(1, repo_before) + tail, kTop, {.storage_name = "physical-node", .relative_path = {}}),
              head + Len(1, repo_after) + tail);
}

static void test_nested_lengths_are_reencoded(void**) {
  // 200 bytes: the repository, the header and the request all need a
  // two-byte length afterwards.
  const std::string long_path(200, 'p');
  const std::string header_before = Len(2, "user") + Len(1, Repo("v", "r")) + Len(3, "main");
  const std::string header_after = Len(2, "user") + Len(1, Repo("v", long_path)) + Len(3, "main");
  ExpectBytes(
      Rewrite(Len(1, header_before) + Len(2, "patch"), kNested, {.storage_name = {}, .relative_path = long_path}),
      Len(1, header_after) + Len(2, "patch"));
  // And back: a 300-byte value replaced by a short one shrinks every prefix.
  const std::string long_storage(300, 's');
  ExpectBytes(Rewrite(Len(1, Len(1, Repo(long_storage, "r"))), kNested, {.storage_name = "n", .relative_path = {}}),
              Len(1, Len(1, Repo("n", "r"))));
  ExpectRepo(Rewrite(Len(1, Len(1, Repo("v", "r"))), kNested, {.storage_name = long_storage, .relative_path = {}}),
             kNested, true, long_storage, "r");
}

static void test_repeated_occurrences_keep_only_the_last(void**) {
  // The parser keeps the last storage_name ("c"); the rewrite replaces it and
  // drops the earlier ones, which the parser would have overwritten anyway.
  const std::string before = Len(1, Len(2, "a") + Len(3, "r") + Len(2, "b")) + Int(5, 5) + Len(1, Len(2, "c"));
  ExpectBytes(Rewrite(before, kTop, {.storage_name = "new", .relative_path = {}}),
              Len(1, Len(3, "r")) + Int(5, 5) + Len(1, Len(2, "new")));
  // Across nested occurrences, too.
  const std::string nested = Len(1, Len(1, Len(2, "a"))) + Len(1, Len(1, Len(2, "b") + Len(3, "r")));
  ExpectBytes(Rewrite(nested, kNested, {.storage_name = "n", .relative_path = "p"}),
              Len(1, Len(1, "")) + Len(1, Len(1, Len(2, "n") + Len(3, "p"))));
}

static void test_repetition_does_not_amplify(void**) {
  std::string repo;
  for (int i = 0; i < 100000; ++i) repo += Len(2, "");
  const std::string before = Len(1, repo);
  const std::string after = Rewrite(before, kTop, {.storage_name = std::string(100, 'x'), .relative_path = {}});
  expect_that(after == Len(1, Len(2, std::string(100, 'x'))), "a single storage_name to remain");
}

static void test_creates_what_is_absent(void**) {
  // No repository: appended at the end, as mutable_repository() would.
  ExpectBytes(Rewrite(Int(2, 1), kTop, {.storage_name = "s", .relative_path = "r"}),
              Int(2, 1) + Len(1, Repo("s", "r")));
  ExpectBytes(Rewrite("", kTop, {.storage_name = "s", .relative_path = {}}), Len(1, Len(2, "s")));
  ExpectBytes(Rewrite("", kTop, {.storage_name = "", .relative_path = {}}), Len(1, Len(2, "")));
  // Repository present, field absent: added to the (last) repository.
  ExpectBytes(
      Rewrite(Len(1, Len(3, "r")) + Int(2, 1) + Len(1, Len(4, "o")), kTop, {.storage_name = "s", .relative_path = {}}),
      Len(1, Len(3, "r")) + Int(2, 1) + Len(1, Len(4, "o") + Len(2, "s")));
  // Header present, repository absent: created inside the last header.
  ExpectBytes(Rewrite(Len(1, Len(2, "u")) + Len(1, Len(3, "b")), kNested, {.storage_name = "s", .relative_path = "r"}),
              Len(1, Len(2, "u")) + Len(1, Len(3, "b") + Len(1, Repo("s", "r"))));
  // Nothing on the path: the whole chain.
  ExpectBytes(Rewrite(Int(3, 1), kNested, {.storage_name = "s", .relative_path = {}}),
              Int(3, 1) + Len(1, Len(1, Len(2, "s"))));
  // Nothing to set: nothing is created.
  ExpectBytes(Rewrite(Int(3, 1), kNested, {}), Int(3, 1));
}

static void test_no_change_returns_input(void**) {
  const std::string before = Int(9, 1) + Len(1, Len(1, Repo("s", "r") + Fixed32(8)));
  ExpectBytes(Rewrite(before, kNested, {}), before);
  // A non-minimal tag (field 1 spelled in two bytes) is copied as spelled.
  const std::string odd_tag = std::string("\x8a\x00", 2) + V(3) + Len(2, "s");
  ExpectBytes(Rewrite(odd_tag, kTop, {.storage_name = "t", .relative_path = {}}),
              std::string("\x8a\x00", 2) + V(3) + Len(2, "t"));
}

static void test_string_field(void**) {
  const std::vector<uint32_t> storage = {1};
  const std::string request = Len(1, "virtual") + Len(2, "namespace");
  auto got = ReadStringField(request, storage);
  assert_status_ok(got.status());
  expect_that(got->has_value() && **got == "virtual", "storage_name virtual");
  auto absent = ReadStringField(Len(2, "namespace"), storage);
  assert_status_ok(absent.status());
  expect_that(!absent->has_value(), "an absent field to read as nullopt");

  auto out = RewriteStringField(request, storage, "gitaly-2");
  assert_status_ok(out.status());
  ExpectBytes(*out, Len(1, "gitaly-2") + Len(2, "namespace"));
  auto created = RewriteStringField(Len(2, "namespace"), storage, "gitaly-2");
  assert_status_ok(created.status());
  ExpectBytes(*created, Len(2, "namespace") + Len(1, "gitaly-2"));

  const std::vector<uint32_t> nested = {5, 7};
  const std::string deep = Len(5, Len(7, "a") + Int(1, 1)) + Len(5, Len(7, "b"));
  auto last = ReadStringField(deep, nested);
  assert_status_ok(last.status());
  expect_that(last->has_value() && **last == "b", "the last occurrence to win");
  auto deep_out = RewriteStringField(deep, nested, "c");
  assert_status_ok(deep_out.status());
  ExpectBytes(*deep_out, Len(5, Int(1, 1)) + Len(5, Len(7, "c")));
  // A string field read as a string, not a message.
  const std::vector<uint32_t> varint_field = {2};
  auto not_string = ReadStringField(Int(2, 1), varint_field);
  expect_that(not_string.status().code() == StatusCode::kInvalidArgument, "a varint to be refused as a string");
}

static void test_malformed_framing(void**) {
  ExpectMalformed("\x80", kTop, "truncated field tag", 0);
  ExpectMalformed(Len(5, "ok") + "\xff\xff", kTop, "truncated field tag", 4);
  ExpectMalformed(std::string("\x8a\x80\x80\x80\x80\x00", 6), kTop, "field tag longer than 5 bytes", 0);
  ExpectMalformed(std::string("\x00", 1), kTop, "field number 0", 0);
  ExpectMalformed(Int(3, 1) + std::string("\x02\x00", 2), kTop, "field number 0", 2);
  ExpectMalformed("\x08\x80", kTop, "varint value of field 1 is truncated", 1);
  ExpectMalformed(std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12), kTop, "longer than 10 bytes", 1);
  ExpectMalformed("\x09\x01\x02", kTop, "fixed64 value of field 1 is truncated", 1);
  ExpectMalformed("\x15\x01", kTop, "fixed32 value of field 2 is truncated", 1);
  ExpectMalformed(
      "\x0a\x05"
      "ab",
      kTop, "field 1 declares 5 bytes but only 2 remain", 1);
  ExpectMalformed("\x0a\x80", kTop, "length of field 1 is truncated", 1);
  ExpectMalformed(std::string("\x0a\x80\x80\x80\x80\x80\x00", 7), kTop, "length of field 1", 1);
  ExpectMalformed("\x0a\xff\xff\xff\xff\x0f", kTop, "length of field 1", 1);
  ExpectMalformed("\x0e", kTop, "field 1 has invalid wire type 6", 0);
  ExpectMalformed(Int(2, 2) + "\x17", kTop, "field 2 has invalid wire type 7", 2);
  ExpectMalformed("\x0b\x0c", kTop, "field 1 is a group (start-group)", 0);
  ExpectMalformed(Len(1, "") + "\x2b\x2c", kTop, "field 5 is a group", 2);
  ExpectMalformed("\x0c", kTop, "end-group", 0);
}

static void test_malformed_inside_the_path(void**) {
  // Offsets count from the start of the request, whatever the nesting.
  ExpectMalformed(Int(3, 1) + Len(1, Int(9, 1) + "\x12\x09"
                                                 "abc"),
                  kTop, "field 2 declares 9 bytes but only 3", 7);
  ExpectMalformed(Len(1, Len(1, "\x80")), kNested, "truncated field tag", 4);
  ExpectMalformed(Int(1, 1), kTop, "field at path 1 has wire type varint where an embedded message", 0);
  ExpectMalformed(Len(1, Fixed32(1)), kNested, "field at path 1.1 has wire type fixed32", 2);
  ExpectMalformed(Len(1, Int(2, 7)), kTop, "field at path 1.2 has wire type varint where a string", 2);
  ExpectMalformed(Len(1, Fixed64(3)), kTop, "field at path 1.3 has wire type fixed64", 2);
  // proto3 strings must be UTF-8; every occurrence counts, as in libprotobuf.
  ExpectMalformed(Len(1, Len(2, "\xff")), kTop, "string at path 1.2 is not valid UTF-8", 4);
  ExpectMalformed(Len(1, Len(3, "ok\xc3") + Len(3, "fine")), kTop, "string at path 1.3 is not valid UTF-8", 4);
  ExpectMalformed(Len(1, Len(2, "\xed\xa0\x80")), kTop, "not valid UTF-8", 4);  // a surrogate
}

// The object directories of a quarantined repository pass through as they
// are, every alternate kept, but a NUL or control character in any of them
// (any occurrence, any element) refuses the request before it goes anywhere.
static void test_object_directories_checked_and_kept(void**) {
  const std::string dirs = Len(4, "../../+gitaly/tmp/q1/objects") + Len(5, "objects") + Len(5, "../pool/objects");
  const std::string msg = Len(1, Repo("default", "r.git") + dirs);
  ExpectRepo(msg, kTop, true, "default", "r.git");
  ExpectBytes(Rewrite(msg, kTop, {.storage_name = "gitaly-1", .relative_path = "@cluster/x"}),
              Len(1, Repo("gitaly-1", "@cluster/x") + dirs));
  auto refused = [](const std::string& message, const std::string& what) {
    auto read = ReadRepository(message, kTop);
    expect_that(read.status().code() == StatusCode::kInvalidArgument &&
                    read.status().message().find(what) != std::string::npos,
                "the reader to refuse with \"" + what + "\", got " + read.status().ToString());
    auto rewritten = RewriteRepository(message, kTop, {.storage_name = "s", .relative_path = {}});
    expect_that(rewritten.status().code() == StatusCode::kInvalidArgument, "the rewriter to refuse too");
  };
  refused(Len(1, Repo("default", "r.git") + Len(4, std::string("obj\0x", 5))),
          "git_object_directory \"obj\\x00x\": contains a NUL byte at offset 3");
  refused(Len(1, Repo("default", "r.git") + Len(5, "ok") + Len(5, "bad\nline")),
          "git_alternate_object_directories \"bad\\nline\": contains the control character 0x0a");
  // An earlier occurrence that a parser would overwrite is checked as well.
  refused(Len(1, Repo("default", "r.git") + Len(4, "a\x01")) + Len(1, Len(4, "fine")),
          "control character 0x01");
}

static void test_off_path_bytes_are_not_examined(void**) {
  // Field 5 holds bytes that are no valid message, and the repository holds
  // an unknown field with invalid UTF-8: neither is on the path.
  const std::string message = Len(5, "\xff\xff\x0f") + Len(1, Repo("s", "r") + Len(9, "\xff"));
  ExpectRepo(message, kTop, true, "s", "r");
  ExpectBytes(Rewrite(message, kTop, {.storage_name = "t", .relative_path = {}}),
              Len(5, "\xff\xff\x0f") + Len(1, Repo("t", "r") + Len(9, "\xff")));
}

static void test_bad_paths_and_values_are_internal(void**) {
  const std::string message = Len(1, Repo("s", "r"));
  auto expect_internal = [](const praefect::Status& st, const char* what) {
    if (st.code() != StatusCode::kInternal || st.message().find(what) == std::string::npos) {
      fail_msg("got \"%s\", want INTERNAL mentioning \"%s\"", st.ToString().c_str(), what);
    }
  };
  expect_internal(ReadRepository(message, std::vector<uint32_t>{}).status(), "empty field path");
  expect_internal(ReadRepository(message, std::vector<uint32_t>{1, 0}).status(), "contains 0");
  expect_internal(ReadRepository(message, std::vector<uint32_t>{1u << 29}).status(), "not a protobuf field number");
  expect_internal(ReadStringField(message, std::vector<uint32_t>(17, 1)).status(), "at most 16");
  expect_internal(RewriteRepository(message, kTop, {.storage_name = "\xff", .relative_path = {}}).status(),
                  "storage_name is not valid UTF-8");
  expect_internal(RewriteStringField(message, kTop, "\xc0\x80").status(), "not valid UTF-8");
}

static void test_huge_inputs(void**) {
  // 64 MiB of payload in front of the repository.
  const std::string blob(64u << 20, 'b');
  const std::string message = Len(2, blob) + Len(1, Repo("s", "r")) + Len(3, blob);
  ExpectRepo(message, kTop, true, "s", "r");
  const std::string out = Rewrite(message, kTop, {.storage_name = "gitaly", .relative_path = {}});
  expect_that(out.size() == message.size() + 5, "the output to grow by exactly 5 bytes");
  ExpectRepo(out, kTop, true, "gitaly", "r");
  expect_that(out.compare(out.size() - blob.size(), blob.size(), blob) == 0, "the trailing bytes to be kept");

  // Over protobuf's 2 GiB limit: refused on size alone, before any byte is
  // read (the mapping is never touched, so it costs no memory).
  const size_t huge = (size_t{1} << 31) + 1;
  void* region = mmap(nullptr, huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) skip();
  const std::string_view too_big(static_cast<const char*>(region), huge);
  auto read = ReadRepository(too_big, kTop);
  expect_that(read.status().code() == StatusCode::kInvalidArgument &&
                  read.status().message().find("2 GiB") != std::string::npos,
              "a 2 GiB message to be refused");
  expect_that(RewriteRepository(too_big, kTop, {.storage_name = "s", .relative_path = {}}).status().code() ==
                  StatusCode::kInvalidArgument,
              "a 2 GiB message to be refused by the rewriter");
  munmap(region, huge);
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reads_top_level_repository),
      cmocka_unit_test(test_reads_missing_and_empty_repository),
      cmocka_unit_test(test_reads_nested_repository),
      cmocka_unit_test(test_reads_merged_occurrences),
      cmocka_unit_test(test_rewrites_in_place),
      cmocka_unit_test(test_keeps_unknown_fields_and_order),
      cmocka_unit_test(test_nested_lengths_are_reencoded),
      cmocka_unit_test(test_repeated_occurrences_keep_only_the_last),
      cmocka_unit_test(test_repetition_does_not_amplify),
      cmocka_unit_test(test_creates_what_is_absent),
      cmocka_unit_test(test_no_change_returns_input),
      cmocka_unit_test(test_string_field),
      cmocka_unit_test(test_malformed_framing),
      cmocka_unit_test(test_malformed_inside_the_path),
      cmocka_unit_test(test_object_directories_checked_and_kept),
      cmocka_unit_test(test_off_path_bytes_are_not_examined),
      cmocka_unit_test(test_bad_paths_and_values_are_internal),
      cmocka_unit_test(test_huge_inputs),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
