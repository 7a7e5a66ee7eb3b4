#include "metrics/process_metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <vector>

namespace praefect::metrics {

namespace {

// The whole of a (/proc) file, whose size stat() does not tell.
std::optional<std::string> ReadFile(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

// The entries of /proc/self/fd, the descriptor reading it included (as
// client_golang counts them).
std::optional<uint64_t> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  uint64_t count = 0;
  while (const struct dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

// The soft limit. RLIM_INFINITY is 2^64-1, which client_golang reports too
// (read as "unlimited" from /proc/self/limits).
std::optional<double> SoftLimit(int resource) {
  struct rlimit limit;
  if (getrlimit(resource, &limit) != 0) return std::nullopt;
  return static_cast<double>(limit.rlim_cur);
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

std::vector<std::string_view> SplitSpaces(std::string_view s) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < s.size()) {
    if (s[pos] == ' ' || s[pos] == '\n') {
      ++pos;
      continue;
    }
    size_t end = s.find_first_of(" \n", pos);
    if (end == std::string_view::npos) end = s.size();
    fields.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return fields;
}

struct Family {
  const char* name;
  const char* type;
  const char* help;
  double value;
};

// The shortest text that reads back as `value`: "20000", "0.42", "1e+06".
std::string FormatValue(double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  size_t lparen = text.find('(');
  size_t rparen = text.rfind(')');
  if (lparen == std::string_view::npos || rparen == std::string_view::npos || rparen < lparen) return std::nullopt;
  // After the command name: (3) state, (4) ppid, ... field n at index n - 3.
  std::vector<std::string_view> fields = SplitSpaces(text.substr(rparen + 1));
  if (fields.size() < 22) return std::nullopt;
  ProcStat stat;
  stat.comm = std::string(text.substr(lparen + 1, rparen - lparen - 1));
  if (!ParseNumber(fields[14 - 3], &stat.utime_ticks) || !ParseNumber(fields[15 - 3], &stat.stime_ticks) ||
      !ParseNumber(fields[20 - 3], &stat.num_threads) || !ParseNumber(fields[22 - 3], &stat.start_ticks) ||
      !ParseNumber(fields[23 - 3], &stat.vsize_bytes) || !ParseNumber(fields[24 - 3], &stat.rss_pages)) {
    return std::nullopt;
  }
  return stat;
}

std::optional<uint64_t> ParseBootTime(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    uint64_t btime = 0;
    if (line.substr(0, 6) == "btime " && ParseNumber(line.substr(6), &btime)) return btime;
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  return std::nullopt;
}

std::string ProcessMetricsText() {
  std::optional<ProcStat> stat;
  if (std::optional<std::string> text = ReadFile("/proc/self/stat")) stat = ParseProcStat(*text);
  std::optional<uint64_t> boot;
  if (std::optional<std::string> text = ReadFile("/proc/stat")) boot = ParseBootTime(*text);
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);

  // In name order, as client_golang writes them.
  std::vector<Family> families;
  if (stat && ticks > 0) {
    families.push_back({"process_cpu_seconds_total", "counter",
                        "CPU time the process has used, user and system, in seconds.",
                        static_cast<double>(stat->utime_ticks + stat->stime_ticks) / static_cast<double>(ticks)});
  }
  if (std::optional<double> max_fds = SoftLimit(RLIMIT_NOFILE)) {
    families.push_back(
        {"process_max_fds", "gauge", "Most file descriptors the process may open (soft RLIMIT_NOFILE).", *max_fds});
  }
  if (std::optional<uint64_t> fds = CountOpenFds()) {
    families.push_back(
        {"process_open_fds", "gauge", "File descriptors the process has open.", static_cast<double>(*fds)});
  }
  if (stat && page > 0) {
    families.push_back({"process_resident_memory_bytes", "gauge", "Memory of the process held in RAM, in bytes.",
                        static_cast<double>(stat->rss_pages) * static_cast<double>(page)});
  }
  if (stat && ticks > 0 && boot) {
    families.push_back(
        {"process_start_time_seconds", "gauge", "When the process started, in seconds since the Unix epoch.",
         static_cast<double>(*boot) + static_cast<double>(stat->start_ticks) / static_cast<double>(ticks)});
  }
  if (stat) {
    families.push_back({"process_threads", "gauge", "Threads in the process.", static_cast<double>(stat->num_threads)});
    families.push_back({"process_virtual_memory_bytes", "gauge",
                        "Size of the process's virtual address space, in bytes.",
                        static_cast<double>(stat->vsize_bytes)});
  }
  if (std::optional<double> max_vm = SoftLimit(RLIMIT_AS)) {
    families.push_back({"process_virtual_memory_max_bytes", "gauge",
                        "Largest virtual address space the process may have (soft RLIMIT_AS), in bytes; "
                        "2^64 when unlimited.",
                        *max_vm});
  }

  std::string out;
  for (const Family& family : families) {
    out += std::string("# HELP ") + family.name + " " + family.help + "\n";
    out += std::string("# TYPE ") + family.name + " " + family.type + "\n";
    out += std::string(family.name) + " " + FormatValue(family.value) + "\n";
  }
  return out;
}

}  // namespace praefect::metrics
