#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "log/log.h"

// Logging to the systemd journal with structured fields, used when stderr is
// the journal stream of the unit (systemd.exec(5): $JOURNAL_STREAM).
namespace praefect::systemd {

// True when `journal_stream` ("<dev>:<inode>", decimal, as systemd sets
// $JOURNAL_STREAM) names the file `fd` is open on (fstat(2)).
[[nodiscard]] bool IsJournalStream(std::string_view journal_stream, int fd);
// IsJournalStream($JOURNAL_STREAM, 2); false when it is unset. A stderr
// redirected elsewhere by the unit or a shell keeps the variable but not the
// identity, so this is the check systemd.exec(5) recommends.
[[nodiscard]] bool StderrIsJournal();

// syslog(3) priority of a level: trace/debug 7, info 6, warn 4, error 3,
// fatal 2.
int JournalPriority(log::Level level);

// A log field key as a journal field name: upper case, characters other
// than A-Z, 0-9 and _ replaced by _, leading underscores dropped (they are
// the journal's trusted fields), at most 64 characters. Names the journal
// reserves for itself (MESSAGE, PRIORITY, SYSLOG_*, CODE_*...) and names
// that do not start with a letter get the prefix "FIELD_".
std::string JournalFieldName(std::string_view key);

// The "NAME=value" fields of an entry: MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER=praefect, then each field of the entry: the keys
// praefect logs for a call map to GRPC_METHOD (grpc.method),
// CORRELATION_ID, VIRTUAL_STORAGE, STORAGE, RELATIVE_PATH and PRAEFECT_NAME;
// any other key by JournalFieldName. A key seen twice keeps its first value.
std::vector<std::string> JournalFields(const log::Entry& entry);

// Sends fields to the journal (sd_journal_sendv). Values may hold any byte.
void SendToJournal(const std::vector<std::string>& fields);

// A log sink writing each entry as one journal record. Thread-safe.
class JournalSink final : public log::Sink {
 public:
  using Send = std::function<void(const std::vector<std::string>& fields)>;
  // `send` defaults to SendToJournal; tests pass their own.
  explicit JournalSink(Send send = {}) : send_(send ? std::move(send) : Send(SendToJournal)) {}
  void Write(const log::Entry& entry) override { send_(JournalFields(entry)); }

 private:
  const Send send_;
};

}  // namespace praefect::systemd
