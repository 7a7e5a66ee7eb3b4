#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/subcommand.h"

// The operator subcommands as Praefect v16 runs them (urfave/cli v2 over
// Go's flag package), so that runbooks and scripts see the same flags,
// help, messages and exit codes (../shared/reference/operator-commands.md
// §1): -x and --x, -x v and -x=v, bools -b and -b=false, parsing stops at the
// first positional argument; -h/--help prints the command's help.
namespace praefect::cli {

struct FlagSpec {
  enum class Kind { kString, kBool, kInt64, kDuration };
  std::string name;
  Kind kind = Kind::kString;
  std::string usage;
  bool required = false;
  // Other names of the same flag (-repository for -relative-path).
  std::vector<std::string> aliases;
};

FlagSpec StringFlag(std::string name, std::string usage, bool required = false,
                    std::vector<std::string> aliases = {});
FlagSpec BoolFlag(std::string name, std::string usage);
FlagSpec Int64Flag(std::string name, std::string usage);
// A Go time.Duration ("6h", "90m", "1h30m"); `usage` names the default.
FlagSpec DurationFlag(std::string name, std::string usage);

struct CommandSpec {
  std::string name;         // "dataloss"
  std::string usage;        // one line, after "praefect <name> - "
  std::string description;  // may be several lines
  std::vector<FlagSpec> flags;
  // accept-dataloss (and serve) report a positional argument as a plain
  // error: timestamped, no help.
  bool positional_error_plain = false;
};

// The flags given, by canonical name (aliases resolved).
class ParsedFlags {
 public:
  bool Has(std::string_view name) const { return values_.count(std::string(name)) > 0; }
  std::string String(std::string_view name) const;
  bool Bool(std::string_view name) const { return String(name) == "true"; }
  // REQUIRES: the flag is an int64 flag (parsed already).
  int64_t Int64(std::string_view name) const;

 private:
  friend std::optional<ParsedFlags> ParseCommand(const CommandSpec&, const Invocation&, int*);
  std::map<std::string, std::string> values_;
};

// Parses inv.args for `spec`. Returns the flags, or nullopt when the command
// must stop: *exit_code is then 0 (help printed) or 1 (the problem printed
// as Praefect prints it: unknown flag, bad value, missing required flags,
// positional arguments).
std::optional<ParsedFlags> ParseCommand(const CommandSpec& spec, const Invocation& inv, int* exit_code);

// The command's help, as urfave/cli prints it (NAME, USAGE, DESCRIPTION,
// OPTIONS).
std::string CommandHelp(const CommandSpec& spec);

// Go's log prefix: "YYYY/MM/DD HH:MM:SS " in local time.
std::string GoLogTimestamp(std::chrono::system_clock::time_point t);

// A plain error, as Praefect's main logs it: "<timestamp> <message>" on
// inv.err. Returns exit status 1.
int PlainError(const Invocation& inv, std::string_view message);

// An "exit" error: the message alone on inv.err. Returns exit status 1.
int ExitError(const Invocation& inv, std::string_view message);

// `text` as Go's %q prints it.
std::string GoQuote(std::string_view text);

}  // namespace praefect::cli
