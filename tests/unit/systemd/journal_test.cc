// The journal sink: when stderr counts as the journal stream, and how log
// entries become journal fields.
#include "systemd/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "test_support.h"

using namespace praefect;
using namespace praefect::systemd;

namespace {

std::string DevIno(int fd) {
  struct stat st {};
  fstat(fd, &st);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

bool Has(const std::vector<std::string>& fields, const std::string& field) {
  return std::find(fields.begin(), fields.end(), field) != fields.end();
}

std::string Join(const std::vector<std::string>& fields) {
  std::string out;
  for (const auto& f : fields) out += f + " | ";
  return out;
}

}  // namespace

static void test_journal_stream_matches_the_fd_identity(void**) {
  int a[2];
  int b[2];
  assert_int_equal(pipe(a), 0);
  assert_int_equal(pipe(b), 0);
  expect_that(IsJournalStream(DevIno(a[1]), a[1]), "the pipe's own dev:ino matches it");
  expect_that(!IsJournalStream(DevIno(b[1]), a[1]), "another pipe's dev:ino does not match");
  assert_false(IsJournalStream("", a[1]));
  assert_false(IsJournalStream("12", a[1]));
  assert_false(IsJournalStream("x:y", a[1]));
  assert_false(IsJournalStream(DevIno(a[1]) + "0", a[1]));

  // StderrIsJournal reads $JOURNAL_STREAM and fd 2: point fd 2 at the pipe.
  int saved = dup(2);
  dup2(a[1], 2);
  setenv("JOURNAL_STREAM", DevIno(a[1]).c_str(), 1);
  const bool with_match = StderrIsJournal();
  setenv("JOURNAL_STREAM", DevIno(b[1]).c_str(), 1);
  const bool with_other = StderrIsJournal();
  unsetenv("JOURNAL_STREAM");
  const bool without = StderrIsJournal();
  dup2(saved, 2);
  close(saved);
  expect_that(with_match, "stderr is the journal when JOURNAL_STREAM names it");
  expect_that(!with_other, "a JOURNAL_STREAM of another file (stderr redirected) is not the journal");
  expect_that(!without, "no JOURNAL_STREAM: not the journal");
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

static void test_fields_of_a_call(void**) {
  log::Fields fields{{"grpc.method", "/gitaly.RepositoryService/RepositoryExists"},
                     {"correlation_id", "01HX"},
                     {"virtual_storage", "default"},
                     {"storage", "gitaly-1"},
                     {"relative_path", "@hashed/ab/cd.git"},
                     {"praefect_name", "host:0.0.0.0:2305"},
                     {"error", "connection refused\nsecond line"},
                     {"attempt", 3},
                     {"message", "clash"},
                     {"_trusted", "x"},
                     {"9lives", "y"},
                     {"storage", "second value"}};
  const int entry_line = __LINE__ + 1;
  log::Entry entry{std::chrono::system_clock::now(), log::Level::kWarn, "node unhealthy", fields};
  std::vector<std::string> out;
  JournalSink sink([&](const std::vector<std::string>& f) { out = f; });
  sink.Write(entry);
  const std::string all = Join(out);
  // journalctl's default view shows MESSAGE alone: the fields follow the
  // message as in the text log, sorted and quoted the same way.
  expect_that(out.size() >= 3 && out[0].rfind("MESSAGE=node unhealthy 9lives=y _trusted=x attempt=3 ", 0) == 0,
              "MESSAGE first, with the fields: " + all);
  expect_that(out[0].find(" error=\"connection refused\\nsecond line\" ") != std::string::npos,
              "a value with a newline is quoted in MESSAGE: " + out[0]);
  expect_that(out[0].find('\n') == std::string::npos, "MESSAGE stays on one line: " + out[0]);
  // The caller's place: this test's line, not the sink's.
  expect_that(Has(out, std::string("CODE_FILE=") + __FILE__), "CODE_FILE is the caller's file: " + all);
  expect_that(Has(out, "CODE_LINE=" + std::to_string(entry_line)), "CODE_LINE is the caller's line: " + all);
  expect_that(Has(out, "CODE_FUNC=test_fields_of_a_call"), "CODE_FUNC: " + all);
  expect_that(Has(out, "PRIORITY=4"), "warn is priority 4: " + all);
  expect_that(Has(out, "SYSLOG_IDENTIFIER=praefect"), all);
  expect_that(Has(out, "GRPC_METHOD=/gitaly.RepositoryService/RepositoryExists"), all);
  expect_that(Has(out, "CORRELATION_ID=01HX"), all);
  expect_that(Has(out, "VIRTUAL_STORAGE=default"), all);
  expect_that(Has(out, "STORAGE=gitaly-1"), "the first storage wins: " + all);
  expect_that(!Has(out, "STORAGE=second value"), all);
  expect_that(Has(out, "RELATIVE_PATH=@hashed/ab/cd.git"), all);
  expect_that(Has(out, "PRAEFECT_NAME=host:0.0.0.0:2305"), all);
  expect_that(Has(out, "ERROR=connection refused\nsecond line"), "values keep their bytes: " + all);
  expect_that(Has(out, "ATTEMPT=3"), all);
  expect_that(Has(out, "FIELD_MESSAGE=clash"), "a field named message must not replace MESSAGE: " + all);
  expect_that(Has(out, "TRUSTED=x"), "no trusted (underscore) fields from a log entry: " + all);
  expect_that(Has(out, "FIELD_9LIVES=y"), all);
  expect_that(std::count_if(out.begin(), out.end(), [](const std::string& f) { return f.rfind("MESSAGE=", 0) == 0; }) == 1,
              "one MESSAGE: " + all);
}

static void test_priorities_and_names(void**) {
  assert_int_equal(JournalPriority(log::Level::kTrace), 7);
  assert_int_equal(JournalPriority(log::Level::kDebug), 7);
  assert_int_equal(JournalPriority(log::Level::kInfo), 6);
  assert_int_equal(JournalPriority(log::Level::kWarn), 4);
  assert_int_equal(JournalPriority(log::Level::kError), 3);
  assert_int_equal(JournalPriority(log::Level::kFatal), 2);
  assert_string_equal(JournalFieldName("grpc.request.fullMethod").c_str(), "GRPC_REQUEST_FULLMETHOD");
  assert_string_equal(JournalFieldName("duration-ms").c_str(), "DURATION_MS");
  assert_string_equal(JournalFieldName("priority").c_str(), "FIELD_PRIORITY");
  assert_string_equal(JournalFieldName("syslog_identifier").c_str(), "FIELD_SYSLOG_IDENTIFIER");
  assert_string_equal(JournalFieldName("").c_str(), "FIELD_");
  assert_int_equal(JournalFieldName(std::string(100, 'a')).size(), 64);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_journal_stream_matches_the_fd_identity),
      cmocka_unit_test(test_fields_of_a_call),
      cmocka_unit_test(test_priorities_and_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
