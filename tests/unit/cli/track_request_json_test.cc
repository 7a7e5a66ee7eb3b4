// track-repositories' line decoding, as Go's json.Unmarshal into Praefect's
// trackRepositoryRequest: the members, and Go's messages for bad lines
// (the table: testdata/track_request_json.txt).
#include <vector>

#include "cli/track_request_json.h"
#include "test_support.h"

using praefect::cli::ParseTrackRequestLine;
using praefect::cli::TrackRequest;

namespace {

std::string Describe(const TrackRequest& r) {
  return r.relative_path + "|" + r.replica_path + "|" + r.virtual_storage + "|" + r.authoritative_storage;
}

// Each case: a line, then "=> " and either the members as
// relative|replica|virtual|authoritative or "error: <Go's message>".
void Table(void**) {
  std::ifstream f(PRAEFECT_SOURCE_DIR "/tests/unit/cli/testdata/track_request_json.txt");
  expect_that(f.good(), "the table opens");
  std::string input, line;
  int cases = 0;
  bool have_input = false;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("=> ", 0) != 0) {
      // <N> in the table stands for a newline.
      input.clear();
      for (size_t i = 0; i < line.size(); ++i) {
        if (line.compare(i, 3, "<N>") == 0) {
          input += '\n';
          i += 2;
        } else {
          input += line[i];
        }
      }
      if (line == "<EMPTY>") input.clear();
      have_input = true;
      continue;
    }
    expect_that(have_input, "a case before " + line);
    std::string want = line.substr(3);
    for (size_t at; (at = want.find("<N>")) != std::string::npos;) want.replace(at, 3, "\n");
    auto got = ParseTrackRequestLine(input);
    const std::string text = got.ok() ? Describe(*got) : "error: " + got.status().message();
    expect_that(text == want, "[" + input + "] => " + want + ", got " + text);
    have_input = false;
    ++cases;
  }
  expect_that(cases > 20, "the table has cases: " + std::to_string(cases));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {cmocka_unit_test(Table)};
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
