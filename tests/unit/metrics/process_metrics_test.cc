#include "metrics/process_metrics.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "test_support.h"

using praefect::metrics::ParseBootTime;
using praefect::metrics::ParseProcStat;
using praefect::metrics::ProcessMetricsText;
using praefect::metrics::ProcStat;

namespace {

const std::vector<std::string> kSeries = {
    "process_cpu_seconds_total",
    "process_max_fds",
    "process_open_fds",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
};

// The samples of a text exposition, by series; fails on a line it cannot read.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.find(' ');
    expect_that(space != std::string::npos, "\"name value\", got \"" + line + "\"");
    std::string value = line.substr(space + 1);
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    expect_that(!value.empty() && *end == '\0', "a number in \"" + line + "\"");
    samples[line.substr(0, space)] = v;
  }
  return samples;
}

double Sample(const std::string& series) {
  std::map<std::string, double> samples = Samples(ProcessMetricsText());
  auto it = samples.find(series);
  expect_that(it != samples.end(), series + " in the process metrics");
  return it->second;
}

// 18 fields after the command name, then (20) num_threads 7, (21) 0,
// (22) starttime 4242, (23) vsize 123456789, (24) rss 321, and more.
std::string StatLine(const std::string& comm) {
  return "1234 (" + comm +
         ") S 1 1234 1234 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 7 0 4242 123456789 321 "
         "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
}

}  // namespace

static void test_every_series_with_help_and_type(void**) {
  std::string text = ProcessMetricsText();
  std::map<std::string, double> samples = Samples(text);
  for (const std::string& series : kSeries) {
    expect_that(samples.count(series) == 1, series + " in:\n" + text);
    expect_that(text.find("# HELP " + series + " ") != std::string::npos, "HELP of " + series);
    bool counter = series == "process_cpu_seconds_total";
    expect_that(text.find("# TYPE " + series + (counter ? " counter\n" : " gauge\n")) != std::string::npos,
                "TYPE of " + series + " in:\n" + text);
  }
  expect_that(samples.size() == kSeries.size(), "no other series in:\n" + text);
}

static void test_values_are_those_of_this_process(void**) {
  std::map<std::string, double> samples = Samples(ProcessMetricsText());
  expect_that(samples["process_open_fds"] >= 3, "stdin, stdout, stderr open");
  expect_that(samples["process_resident_memory_bytes"] > 0, "resident memory");
  expect_that(samples["process_virtual_memory_bytes"] >= samples["process_resident_memory_bytes"],
              "virtual memory no smaller than resident");
  expect_that(samples["process_threads"] >= 1, "a thread");

  struct rlimit nofile, as;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &nofile), 0);
  assert_int_equal(getrlimit(RLIMIT_AS, &as), 0);
  expect_that(samples["process_max_fds"] == static_cast<double>(nofile.rlim_cur), "the soft RLIMIT_NOFILE");
  double max_vm = as.rlim_cur == RLIM_INFINITY ? 18446744073709551615.0 : static_cast<double>(as.rlim_cur);
  expect_that(samples["process_virtual_memory_max_bytes"] == max_vm, "the soft RLIMIT_AS, 2^64-1 for unlimited");

  double now = static_cast<double>(std::time(nullptr));
  double start = samples["process_start_time_seconds"];
  expect_that(start <= now + 2,
              "a start time not in the future: " + std::to_string(start) + " at " + std::to_string(now));
  expect_that(start > now - 3600, "a start time within the hour: " + std::to_string(start));
}

static void test_open_fds_counts_a_new_file(void**) {
  double before = Sample("process_open_fds");
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  double during = Sample("process_open_fds");
  close(fd);
  double after = Sample("process_open_fds");
  expect_that(during == before + 1, "one more open fd: " + std::to_string(before) + " then " + std::to_string(during));
  expect_that(after == before, "back after closing it");
}

static void test_cpu_seconds_grow_with_work(void**) {
  double before = Sample("process_cpu_seconds_total");
  // 200 ms of CPU time, 20 ticks at the usual 100 Hz.
  struct timespec t0, t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
  volatile uint64_t sink = 0;
  do {
    for (int i = 0; i < 100000; ++i) sink = sink + static_cast<uint64_t>(i);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 200000000L);
  double after = Sample("process_cpu_seconds_total");
  expect_that(after > before,
              "CPU seconds grow after 200 ms of work: " + std::to_string(before) + " then " + std::to_string(after));
}

static void test_promtool_finds_nothing_to_lint(void**) {
  char path[] = "/tmp/process_metrics_test.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  std::string text = ProcessMetricsText();
  assert_int_equal(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  std::string command = std::string("/usr/bin/promtool check metrics < ") + path + " 2>&1";
  FILE* promtool = popen(command.c_str(), "r");
  assert_non_null(promtool);
  std::string output;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, promtool)) > 0) output.append(buf, n);
  int status = pclose(promtool);
  unlink(path);
  expect_that(status == 0 && output.empty(), "promtool check metrics silent and successful, got status " +
                                                 std::to_string(status) + " and:\n" + output + "\nfor:\n" + text);
}

static void test_parses_stat_fields(void**) {
  std::optional<ProcStat> stat = ParseProcStat(StatLine("praefect"));
  assert_true(stat.has_value());
  expect_that(stat->comm == "praefect", "comm");
  expect_that(stat->utime_ticks == 150 && stat->stime_ticks == 25, "utime 150, stime 25");
  expect_that(stat->num_threads == 7, "num_threads 7");
  expect_that(stat->start_ticks == 4242, "starttime 4242");
  expect_that(stat->vsize_bytes == 123456789, "vsize 123456789");
  expect_that(stat->rss_pages == 321, "rss 321");
}

// The command name is the executable's, up to 15 bytes, and may hold spaces,
// parentheses, and text that looks like the fields after it.
static void test_parses_stat_with_awkward_command_names(void**) {
  for (std::string comm : {"a b", "x) S 9 9 9", ")", "((", ") (", "", "a)b) c"}) {
    std::optional<ProcStat> stat = ParseProcStat(StatLine(comm));
    expect_that(stat.has_value(), "parsed with comm \"" + comm + "\"");
    if (!stat) continue;
    expect_that(stat->comm == comm, "comm \"" + comm + "\", got \"" + stat->comm + "\"");
    expect_that(stat->utime_ticks == 150 && stat->num_threads == 7 && stat->rss_pages == 321,
                "the fields after comm \"" + comm + "\"");
  }
}

static void test_refuses_malformed_stat(void**) {
  std::string good = StatLine("praefect");
  for (const std::string& text : {std::string(""), std::string("1234 praefect S 1 2 3"), good.substr(0, 60),
                                  std::string("1234 (praefect S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21"),
                                  StatLine("p").replace(StatLine("p").find(" 150 "), 5, " x50 ")}) {
    expect_that(!ParseProcStat(text).has_value(), "no parse of \"" + text + "\"");
  }
}

static void test_parses_boot_time(void**) {
  std::optional<uint64_t> btime =
      ParseBootTime("cpu  1 2 3 4\nintr 5 6\nctxt 7\nbtime 1700000000\nprocesses 8\nprocs_running 1\n");
  expect_that(btime == std::optional<uint64_t>(1700000000), "btime 1700000000");
  expect_that(!ParseBootTime("cpu  1 2 3\nnot_btime 12\n").has_value(), "no btime line");
  expect_that(!ParseBootTime("btime soon\n").has_value(), "a btime that is not a number");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_series_with_help_and_type),
      cmocka_unit_test(test_values_are_those_of_this_process),
      cmocka_unit_test(test_open_fds_counts_a_new_file),
      cmocka_unit_test(test_cpu_seconds_grow_with_work),
      cmocka_unit_test(test_promtool_finds_nothing_to_lint),
      cmocka_unit_test(test_parses_stat_fields),
      cmocka_unit_test(test_parses_stat_with_awkward_command_names),
      cmocka_unit_test(test_refuses_malformed_stat),
      cmocka_unit_test(test_parses_boot_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
