// Parsing the payload of migration 0002's repositories_updates triggers.
#include "datastore/repositories_updates.h"

#include "test_support.h"

namespace {

using namespace praefect::datastore;  // NOLINT: test file
using praefect::StatusCode;

void ParsesWhatPostgresSends(void**) {
  // jsonb's text form, as pg_notify sends it (key order is jsonb's).
  auto r = ParseRepositoriesUpdates(
      R"([{"relative_paths": ["a.git", "b/c.git"], "virtual_storage": "default"}, )"
      R"({"virtual_storage":"other","relative_paths":["x.git"]}])");
  assert_status_ok(r.status());
  assert_int_equal(r->size(), 2);
  assert_string_equal((*r)[0].virtual_storage.c_str(), "default");
  expect_that(((*r)[0].relative_paths == std::vector<std::string>{"a.git", "b/c.git"}), "both paths");
  assert_string_equal((*r)[1].virtual_storage.c_str(), "other");
  expect_that(((*r)[1].relative_paths == std::vector<std::string>{"x.git"}), "x.git");
  assert_int_equal(ParseRepositoriesUpdates(" [ ] ")->size(), 0);
}

// Migration 0005: a statement that changed too many repositories to name.
void NullMeansEveryRepositoryOfTheVirtualStorage(void**) {
  auto r = ParseRepositoriesUpdates(R"([{"relative_paths": null, "virtual_storage": "default"}, )"
                                    R"({"virtual_storage": "other", "relative_paths": ["x.git"]}])");
  assert_status_ok(r.status());
  assert_int_equal(r->size(), 2);
  expect_that((*r)[0].all && (*r)[0].relative_paths.empty(), "default: all");
  expect_that(!(*r)[1].all && (*r)[1].relative_paths.size() == 1, "other: x.git only");
  expect_that(ParseRepositoriesUpdates(R"([{"virtual_storage": "d", "relative_paths": nul}])").status().code() ==
                  StatusCode::kInvalidArgument,
              "nul rejected");
}

void DecodesEscapes(void**) {
  auto r = ParseRepositoriesUpdates(
      R"([{"virtual_storage": "d\"q\\", "extra": {"n": [1, -2.5e3, true, null]}, )"
      R"("relative_paths": ["\u00e9t\u00E9\n.git", "\ud83d\ude00.git", "caf\u00e9/\/r.git", "raw é.git"]}])");
  assert_status_ok(r.status());
  assert_string_equal((*r)[0].virtual_storage.c_str(), "d\"q\\");
  const auto& p = (*r)[0].relative_paths;
  assert_int_equal(p.size(), 4);
  assert_string_equal(p[0].c_str(), "\xc3\xa9t\xc3\xa9\n.git");
  assert_string_equal(p[1].c_str(), "\xf0\x9f\x98\x80.git");
  assert_string_equal(p[2].c_str(), "caf\xc3\xa9//r.git");
  assert_string_equal(p[3].c_str(), "raw \xc3\xa9.git");
}

void RejectsWhatItCannotUse(void**) {
  for (const char* bad : {"", "not json", "{}", "[", "[{}]", R"([{"virtual_storage": "d"}])",
                          R"([{"relative_paths": ["a"]}])", R"([{"virtual_storage": 1, "relative_paths": []}])",
                          R"([{"virtual_storage": "d", "relative_paths": [1]}])",
                          R"([{"virtual_storage": "d", "relative_paths": ["a"]}] x)",
                          R"([{"virtual_storage": "d\x", "relative_paths": []}])",
                          R"([{"virtual_storage": "\ud800", "relative_paths": []}])",
                          R"([{"virtual_storage": "d", "relative_paths": ["a)"}) {
    auto r = ParseRepositoriesUpdates(bad);
    expect_that(r.status().code() == StatusCode::kInvalidArgument, std::string("rejected: ") + bad);
    expect_that(r.status().message().find("repositories_updates") != std::string::npos &&
                    r.status().message().find("at byte") != std::string::npos,
                "a message naming the channel and the place, got " + r.status().message());
  }
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ParsesWhatPostgresSends),
      cmocka_unit_test(NullMeansEveryRepositoryOfTheVirtualStorage),
      cmocka_unit_test(DecodesEscapes),
      cmocka_unit_test(RejectsWhatItCannotUse),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
