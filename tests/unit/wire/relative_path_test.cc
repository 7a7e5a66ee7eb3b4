// The relative path rules, from the table in testdata/relative_paths.tsv.
#include "wire/relative_path.h"

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::wire::ValidateObjectDirectory;
using praefect::wire::ValidateRelativePath;

namespace {

struct Case {
  int line = 0;
  bool ok = false;
  std::string path;
  std::string fragment;
};

// C escapes of the table: \xNN, \n, \t, \\.
std::string Unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    char c = text[++i];
    if (c == 'n') {
      out += '\n';
    } else if (c == 't') {
      out += '\t';
    } else if (c == 'x' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<Case> LoadTable() {
  std::ifstream in(PRAEFECT_TESTDATA_DIR "/relative_paths.tsv");
  std::vector<Case> cases;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    for (size_t start = 0;;) {
      size_t tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    Case c;
    c.line = n;
    c.ok = cols.at(0) == "ok";
    c.path = Unescape(cols.size() > 1 ? cols[1] : "");
    if (!c.ok) c.fragment = cols.at(2);
    cases.push_back(std::move(c));
  }
  return cases;
}

void test_table(void**) {
  std::vector<Case> cases = LoadTable();
  expect_that(cases.size() >= 40, "the table loaded (" + std::to_string(cases.size()) + " cases)");
  for (const Case& c : cases) {
    Status st = ValidateRelativePath("relative path", c.path);
    const std::string where = "relative_paths.tsv:" + std::to_string(c.line);
    if (c.ok) {
      expect_that(st.ok(), where + ": accepted, got " + st.ToString());
    } else {
      expect_that(st.code() == StatusCode::kInvalidArgument, where + ": INVALID_ARGUMENT, got " + st.ToString());
      expect_that(st.message().find(c.fragment) != std::string::npos,
                  where + ": a message with \"" + c.fragment + "\", got " + st.message());
      expect_that(st.message().starts_with("relative path"), where + ": names what was checked: " + st.message());
    }
  }
}

// The message shows the path, quoted so that whatever the client sent is
// printable, and cut when it is long.
void test_message_quotes_the_path(void**) {
  Status st = ValidateRelativePath("relative path", std::string("a\0b\n", 4));
  expect_that(st.message().starts_with("relative path \"a\\x00b\\n\": contains a NUL byte at offset 1"),
              "escaped NUL and newline, got " + st.message());
  st = ValidateRelativePath("namespace", std::string(3000, 'z'));
  expect_that(st.message().find("... (3000 bytes)") != std::string::npos && st.message().size() < 400,
              "a long path cut in the message, got " + std::to_string(st.message().size()) + " bytes");
}

void test_object_directories(void**) {
  assert_status_ok(ValidateObjectDirectory("git_object_directory", "objects/incoming-ab12"));
  // A quarantine directory is given relative to the repository and lies
  // outside it, under +gitaly/tmp: the node checks where it leads.
  assert_status_ok(ValidateObjectDirectory("git_object_directory", "../../../+gitaly/tmp/quarantine-1/objects"));
  assert_status_ok(ValidateObjectDirectory("git_alternate_object_directories", ""));
  Status st = ValidateObjectDirectory("git_object_directory", std::string("objects\0x", 9));
  expect_that(st.code() == StatusCode::kInvalidArgument && st.message().find("NUL byte at offset 7") != std::string::npos,
              "NUL refused, got " + st.ToString());
  st = ValidateObjectDirectory("git_alternate_object_directories", "obj\rects");
  expect_that(st.code() == StatusCode::kInvalidArgument, "control character refused, got " + st.ToString());
  st = ValidateObjectDirectory("git_object_directory", "\xc3");
  expect_that(st.code() == StatusCode::kInvalidArgument, "invalid UTF-8 refused, got " + st.ToString());
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_message_quotes_the_path),
      cmocka_unit_test(test_object_directories),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
