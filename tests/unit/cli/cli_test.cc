#include "cli/cli.h"
#include "test_support.h"

namespace {

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
  args.insert(args.begin(), "praefect");
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int code = praefect::cli::Run(args, in, out, err);
  return {code, out.str(), err.str()};
}

bool Contains(const std::string& hay, const char* needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

static void test_version_spellings(void**) {
  for (const char* spelling : {"version", "-version", "--version"}) {
    Result r = RunCli({spelling});
    assert_int_equal(r.code, 0);
    expect_that(r.out.rfind("praefect, version ", 0) == 0, std::string("version output for ") + spelling);
    expect_that(Contains(r.out, "Gitaly protocol 1."), "the Gitaly protocol version");
  }
}

static void test_unknown_subcommand_is_usage_error(void**) {
  Result r = RunCli({"-config", "x.toml", "frobnicate"});
  assert_int_equal(r.code, 2);
  expect_that(Contains(r.err, "unknown subcommand \"frobnicate\""), "the unknown name in the message");
  expect_that(Contains(r.err, "usage: praefect"), "usage after the error");
}

static void test_config_flag_forms(void**) {
  Result missing = RunCli({"-config"});
  assert_int_equal(missing.code, 2);
  expect_that(Contains(missing.err, "flag needs an argument: -config FILE"), "the missing argument named");
  Result unknown = RunCli({"-conf", "x"});
  assert_int_equal(unknown.code, 2);
  expect_that(Contains(unknown.err, "unknown flag -conf"), "the unknown flag named");
}

static void test_serve_refuses_what_it_cannot_start_with(void**) {
  Result r = RunCli({"-config", "/nonexistent/x.toml"});
  assert_int_equal(r.code, 1);
  expect_that(Contains(r.err, "/nonexistent/x.toml"), "the unreadable file named: " + r.err);
  Result none = RunCli({"serve"});
  assert_int_equal(none.code, 1);
  expect_that(Contains(none.err, "no configuration"), "a missing -config explained: " + none.err);
  Result extra = RunCli({"-config", "x.toml", "serve", "now"});
  assert_int_equal(extra.code, 1);
  expect_that(Contains(extra.err, "unexpected argument \"now\""), "an extra argument named: " + extra.err);
}

static void test_help(void**) {
  Result r = RunCli({"-help"});
  assert_int_equal(r.code, 0);
  expect_that(Contains(r.out, "subcommands:"), "the subcommand list");
  // The longest name keeps two spaces before its summary.
  expect_that(Contains(r.out, "\n  list-untracked-repositories  list repositories"),
              "the summary column apart from every name: " + r.out);
  expect_that(Contains(r.out, "\n  serve                        run the praefect server"),
              "the summaries aligned: " + r.out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_spellings),
      cmocka_unit_test(test_unknown_subcommand_is_usage_error),
      cmocka_unit_test(test_config_flag_forms),
      cmocka_unit_test(test_serve_refuses_what_it_cannot_start_with),
      cmocka_unit_test(test_help),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
