#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace praefect::metrics {

// The process collector series of Prometheus' Go client (client_golang), which
// Gitaly's Praefect exposes, read from /proc at each call, in the text
// exposition format 0.0.4 with HELP and TYPE lines:
//   process_cpu_seconds_total, process_max_fds, process_open_fds,
//   process_resident_memory_bytes, process_start_time_seconds,
//   process_virtual_memory_bytes, process_virtual_memory_max_bytes,
// and process_threads (not in client_golang; in other clients' collectors).
// A series whose source cannot be read is left out; never fails otherwise.
// As in client_golang, an unlimited limit reads as RLIM_INFINITY, 2^64-1, as a
// double: 2^64 (Go writes it 1.8446744073709552e+19, this file
// 18446744073709551616; the same value to Prometheus). Thread-safe.
std::string ProcessMetricsText();

// The fields of /proc/<pid>/stat read above (proc(5)).
struct ProcStat {
  std::string comm;          // (2) the command name, without its parentheses
  uint64_t utime_ticks = 0;  // (14) user CPU time, clock ticks
  uint64_t stime_ticks = 0;  // (15) system CPU time, clock ticks
  int64_t num_threads = 0;   // (20)
  uint64_t start_ticks = 0;  // (22) start time, clock ticks after boot
  uint64_t vsize_bytes = 0;  // (23) virtual memory size
  int64_t rss_pages = 0;     // (24) resident set size
};

// Parses the text of /proc/<pid>/stat; nullopt when it is malformed. The
// command name is in parentheses and may hold anything, spaces and ')' too:
// it ends at the last ')'.
std::optional<ProcStat> ParseProcStat(std::string_view text);

// The boot time (Unix seconds) in the text of /proc/stat: its "btime" line.
std::optional<uint64_t> ParseBootTime(std::string_view text);

}  // namespace praefect::metrics
