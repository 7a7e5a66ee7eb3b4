#include "log/log.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "common/json.h"

namespace praefect::log {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}


// logrus' TextFormatter leaves a value bare only when every character is in
// this set; anything else is written as a quoted string.
bool NeedsQuoting(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                 c == '.' || c == '_' || c == '/' || c == '@' || c == '^' || c == '+';
    if (!plain) return true;
  }
  return false;
}

// Go's %q as logrus writes quoted values: escapes for quote, backslash and
// control characters; other bytes as they are.
void AppendTextValue(std::string& out, std::string_view v) {
  if (!NeedsQuoting(v)) {
    out.append(v);
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace

std::string FormatTime(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

Field::Field(std::string_view k, double v) : key(k), kind(Kind::kNumber) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  value = buf;
}

StatusOr<Level> ParseLevel(std::string_view text) {
  std::string l = Lower(text);
  if (l.empty() || l == "info") return Level::kInfo;
  if (l == "trace") return Level::kTrace;
  if (l == "debug") return Level::kDebug;
  if (l == "warn" || l == "warning") return Level::kWarn;
  if (l == "error") return Level::kError;
  if (l == "fatal" || l == "panic") return Level::kFatal;
  return InvalidArgument("unknown log level \"" + std::string(text) +
                         "\": expected one of trace, debug, info, warn, error, fatal, panic");
}

StatusOr<Format> ParseFormat(std::string_view text) {
  std::string f = Lower(text);
  if (f.empty() || f == "text") return Format::kText;
  if (f == "json") return Format::kJson;
  return InvalidArgument("unknown log format \"" + std::string(text) + "\": expected text or json");
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warning";
    case Level::kError: return "error";
    case Level::kFatal: return "fatal";
  }
  return "info";
}

namespace {

std::vector<const Field*> SortedFields(const Fields& fields) {
  std::vector<const Field*> sorted;
  sorted.reserve(fields.size());
  for (const Field& f : fields) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Field* a, const Field* b) { return a->key < b->key; });
  return sorted;
}

}  // namespace

void AppendTextFields(std::string& out, const Fields& fields) {
  for (const Field* f : SortedFields(fields)) {
    out += ' ';
    out += f->key;
    out += '=';
    AppendTextValue(out, f->value);
  }
}

std::string StreamSink::FormatEntry(const Entry& entry, Format format) {
  std::vector<const Field*> sorted = SortedFields(entry.fields);

  std::string out;
  out.reserve(128 + entry.message.size());
  std::string time = FormatTime(entry.time);
  if (format == Format::kText) {
    out += "time=\"";
    out += time;
    out += "\" level=";
    out += LevelName(entry.level);
    out += " msg=";
    AppendTextValue(out, entry.message);
    AppendTextFields(out, entry.fields);
  } else {
    // Go's encoding/json sorts map keys; level, msg and time sit among them.
    std::vector<std::pair<std::string_view, const Field*>> keys;
    Field level("level", LevelName(entry.level));
    Field msg("msg", entry.message);
    Field tm("time", time);
    for (const Field* f : sorted) {
      if (f->key == "level" || f->key == "msg" || f->key == "time") continue;  // ours win, as in logrus
      keys.emplace_back(f->key, f);
    }
    keys.emplace_back("level", &level);
    keys.emplace_back("msg", &msg);
    keys.emplace_back("time", &tm);
    std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    out += '{';
    bool first = true;
    for (const auto& [key, f] : keys) {
      if (!first) out += ',';
      first = false;
      AppendJsonString(out, key);
      out += ':';
      if (f->kind == Field::Kind::kString) {
        AppendJsonString(out, f->value);
      } else {
        out += f->value;
      }
    }
    out += '}';
  }
  out += '\n';
  return out;
}

void StreamSink::Write(const Entry& entry) {
  std::string line = FormatEntry(entry, format_);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere left to report a failing log stream.
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void Logger::Log(Level level, std::string_view message, const Fields& fields, SourceLocation location) {
  if (!Enabled(level)) return;
  std::shared_ptr<Sink> sink;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sink = sink_;
  }
  if (sink) sink->Write(Entry{std::chrono::system_clock::now(), level, message, fields, location});
}

void Logger::SetSink(std::shared_ptr<Sink> sink) {
  std::lock_guard<std::mutex> lock(mu_);
  sink_ = std::move(sink);
}

Logger& Default() {
  static Logger logger(Level::kInfo, std::make_shared<StreamSink>(STDERR_FILENO, Format::kText));
  return logger;
}

}  // namespace praefect::log
