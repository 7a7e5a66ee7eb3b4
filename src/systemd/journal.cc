#include "systemd/journal.h"

#include <sys/stat.h>
#include <sys/uio.h>
// sd_journal_sendv would otherwise add this file's name and line; the
// caller's place is sent instead.
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <set>

namespace praefect::systemd {
namespace {

bool ParseDecimal(std::string_view text, unsigned long long* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Fields journald fills in or interprets itself; a log field of the same
// name would be mistaken for them.
bool Reserved(std::string_view name) {
  static constexpr std::array<std::string_view, 10> kExact = {
      "MESSAGE", "MESSAGE_ID", "PRIORITY", "ERRNO", "INVOCATION_ID", "USER_INVOCATION_ID",
      "TID",     "UNIT",       "USER_UNIT", "DOCUMENTATION"};
  if (std::find(kExact.begin(), kExact.end(), name) != kExact.end()) return true;
  for (std::string_view prefix : {"SYSLOG_", "CODE_", "OBJECT_", "COREDUMP_"}) {
    if (name.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

// The keys praefect logs for a call, and their names in the journal.
struct Mapped {
  std::string_view key;
  std::string_view field;
};
constexpr std::array<Mapped, 7> kMapped = {{
    {"grpc.method", "GRPC_METHOD"},
    {"correlation_id", "CORRELATION_ID"},
    {"virtual_storage", "VIRTUAL_STORAGE"},
    {"storage", "STORAGE"},
    {"relative_path", "RELATIVE_PATH"},
    {"praefect_name", "PRAEFECT_NAME"},
    {"grpc.request.glProjectPath", "GL_PROJECT_PATH"},
}};

}  // namespace

bool IsJournalStream(std::string_view journal_stream, int fd) {
  const size_t colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  if (!ParseDecimal(journal_stream.substr(0, colon), &dev) || !ParseDecimal(journal_stream.substr(colon + 1), &ino))
    return false;
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

bool StderrIsJournal() {
  const char* value = std::getenv("JOURNAL_STREAM");
  return value != nullptr && IsJournalStream(value, 2);
}

int JournalPriority(log::Level level) {
  switch (level) {
    case log::Level::kTrace:
    case log::Level::kDebug: return 7;
    case log::Level::kInfo: return 6;
    case log::Level::kWarn: return 4;
    case log::Level::kError: return 3;
    case log::Level::kFatal: return 2;
  }
  return 6;
}

std::string JournalFieldName(std::string_view key) {
  std::string name;
  for (char c : key) {
    if (c >= 'a' && c <= 'z') {
      name += static_cast<char>(c - 'a' + 'A');
    } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      name += c;
    } else {
      name += '_';
    }
  }
  name.erase(0, name.find_first_not_of('_'));
  if (name.empty() || !(name[0] >= 'A' && name[0] <= 'Z') || Reserved(name)) name = "FIELD_" + name;
  if (name.size() > 64) name.resize(64);
  return name;
}

std::vector<std::string> JournalFields(const log::Entry& entry) {
  std::vector<std::string> fields;
  fields.reserve(entry.fields.size() + 6);
  // journalctl shows MESSAGE only (without -o verbose): it carries the
  // fields too, as the text log does, so "node is healthy" says which node.
  std::string message = "MESSAGE=";
  message += entry.message;
  log::AppendTextFields(message, entry.fields);
  fields.push_back(std::move(message));
  fields.push_back("PRIORITY=" + std::to_string(JournalPriority(entry.level)));
  fields.push_back("SYSLOG_IDENTIFIER=praefect");
  // The caller's place, not this file's (sd_journal_sendv's macro would
  // record journal.cc: SD_JOURNAL_SUPPRESS_LOCATION above).
  fields.push_back(std::string("CODE_FILE=") + entry.location.file_name());
  fields.push_back("CODE_LINE=" + std::to_string(entry.location.line()));
  fields.push_back(std::string("CODE_FUNC=") + entry.location.function_name());
  std::set<std::string, std::less<>> seen;
  for (const log::Field& f : entry.fields) {
    std::string name;
    auto mapped = std::find_if(kMapped.begin(), kMapped.end(), [&](const Mapped& m) { return m.key == f.key; });
    name = mapped != kMapped.end() ? std::string(mapped->field) : JournalFieldName(f.key);
    if (!seen.insert(name).second) continue;
    fields.push_back(name + "=" + f.value);
  }
  return fields;
}

void SendToJournal(const std::vector<std::string>& fields) {
  std::vector<struct iovec> iov(fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    iov[i].iov_base = const_cast<char*>(fields[i].data());
    iov[i].iov_len = fields[i].size();
  }
  // A failed send has nowhere better to go than stderr, which is the journal
  // stream itself; dropping the entry is what journald would do when full.
  (void)sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

}  // namespace praefect::systemd
