#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"

namespace praefect::log {

// Praefect's (logrus') levels, least to most severe.
enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kFatal };

// `[logging] format`.
enum class Format { kText, kJson };

// Parses a `[logging] level` value: trace, debug, info, warn, warning, error,
// fatal, panic (panic is treated as fatal), any case. Empty means info.
StatusOr<Level> ParseLevel(std::string_view text);
// Parses a `[logging] format` value: text or json. Empty means text.
StatusOr<Format> ParseFormat(std::string_view text);
std::string_view LevelName(Level level);

// One structured field of a log entry. Keys are the ones Praefect logs
// ("grpc.method", "correlation_id", "virtual_storage", "storage",
// "relative_path", "error"...); a sink may map them to its own names (the
// journal sink turns them into GRPC_METHOD, CORRELATION_ID, ...).
struct Field {
  // kJson: `value` is a JSON text (an array or object), written as is in
  // the JSON format and quoted like a string in the text format.
  enum class Kind { kString, kNumber, kBool, kJson };
  Field(std::string_view k, std::string_view v) : key(k), value(v), kind(Kind::kString) {}
  Field(std::string_view k, const char* v) : key(k), value(v), kind(Kind::kString) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v), kind(Kind::kString) {}
  Field(std::string_view k, long long v) : key(k), value(std::to_string(v)), kind(Kind::kNumber) {}
  Field(std::string_view k, int v) : Field(k, static_cast<long long>(v)) {}
  Field(std::string_view k, unsigned v) : Field(k, static_cast<long long>(v)) {}
  Field(std::string_view k, long v) : Field(k, static_cast<long long>(v)) {}
  Field(std::string_view k, unsigned long v) : key(k), value(std::to_string(v)), kind(Kind::kNumber) {}
  Field(std::string_view k, double v);
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), kind(Kind::kBool) {}
  static Field Json(std::string_view k, std::string json) {
    Field f(k, std::string_view());
    f.value = std::move(json);
    f.kind = Kind::kJson;
    return f;
  }

  std::string key;
  std::string value;
  Kind kind;
};
using Fields = std::vector<Field>;

// Where in the code an entry was logged. std::source_location would do, but
// clang 14 (Debian 12's, used for the fuzz build) cannot build libstdc++'s;
// the builtins behind it work in both compilers as default arguments.
class SourceLocation {
 public:
  static constexpr SourceLocation Current(const char* file = __builtin_FILE(), int line = __builtin_LINE(),
                                          const char* function = __builtin_FUNCTION()) {
    return SourceLocation(file, line, function);
  }
  constexpr const char* file_name() const { return file_; }
  constexpr int line() const { return line_; }
  constexpr const char* function_name() const { return function_; }

 private:
  constexpr SourceLocation(const char* file, int line, const char* function)
      : file_(file), line_(line), function_(function) {}
  const char* file_;
  int line_;
  const char* function_;
};

struct Entry {
  std::chrono::system_clock::time_point time;
  Level level;
  std::string_view message;
  const Fields& fields;
  // Where in praefect's code the entry was logged (the journal's CODE_FILE,
  // CODE_LINE and CODE_FUNC).
  SourceLocation location = SourceLocation::Current();
};

// Where entries go. Implementations must be thread-safe: Write is called
// concurrently from every thread that logs.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Write(const Entry& entry) = 0;
};

// Writes logrus-compatible lines to a file descriptor in one write(2) each, so
// concurrent lines never interleave:
//   text: time="2026-11-22T03:14:29.123Z" level=info msg="starting" key=value
//   json: {"key":"value","level":"info","msg":"starting","time":"2026-..."}
// (JSON keys sorted, as Go's encoding/json writes logrus' map.)
class StreamSink : public Sink {
 public:
  // `fd` must stay open as long as the sink exists.
  StreamSink(int fd, Format format) : fd_(fd), format_(format) {}
  void Write(const Entry& entry) override;

  // Exposed for tests: the line (with trailing newline) Write would emit.
  static std::string FormatEntry(const Entry& entry, Format format);

 private:
  int fd_;
  Format format_;
};

// A level filter in front of a sink. Thread-safe: the level and sink can be
// replaced while other threads log (SIGHUP reload).
class Logger {
 public:
  Logger(Level level, std::shared_ptr<Sink> sink) : level_(level), sink_(std::move(sink)) {}
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  bool Enabled(Level level) const { return level >= level_.load(std::memory_order_relaxed); }
  void Log(Level level, std::string_view message, const Fields& fields = {},
           SourceLocation location = SourceLocation::Current());

  void SetLevel(Level level) { level_.store(level, std::memory_order_relaxed); }
  void SetSink(std::shared_ptr<Sink> sink);

 private:
  std::atomic<Level> level_;
  std::mutex mu_;
  std::shared_ptr<Sink> sink_;  // GUARDED_BY(mu_) for replacement; copied out to write.
};

// "2026-11-22T03:14:29.123Z" (UTC, milliseconds): Gitaly's log timestamp
// layout.
std::string FormatTime(std::chrono::system_clock::time_point t);

// Appends " key=value" for each field, sorted by key and quoted as the text
// format quotes them (logrus's text formatter).
void AppendTextFields(std::string& out, const Fields& fields);

// The process-wide logger: info level, text to stderr until configured.
Logger& Default();

// Each records the caller's place in the code (SourceLocation::Current's default
// argument is evaluated where the function is called).
inline void Trace(std::string_view m, const Fields& f = {},
                  SourceLocation l = SourceLocation::Current()) {
  Default().Log(Level::kTrace, m, f, l);
}
inline void Debug(std::string_view m, const Fields& f = {},
                  SourceLocation l = SourceLocation::Current()) {
  Default().Log(Level::kDebug, m, f, l);
}
inline void Info(std::string_view m, const Fields& f = {}, SourceLocation l = SourceLocation::Current()) {
  Default().Log(Level::kInfo, m, f, l);
}
inline void Warn(std::string_view m, const Fields& f = {}, SourceLocation l = SourceLocation::Current()) {
  Default().Log(Level::kWarn, m, f, l);
}
inline void Error(std::string_view m, const Fields& f = {},
                  SourceLocation l = SourceLocation::Current()) {
  Default().Log(Level::kError, m, f, l);
}

}  // namespace praefect::log
