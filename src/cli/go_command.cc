#include "cli/go_command.h"

#include <charconv>
#include <ctime>
#include <ostream>

#include "common/duration.h"
#include "common/quote.h"

namespace praefect::cli {
namespace {

const FlagSpec* FindFlag(const CommandSpec& spec, std::string_view name) {
  for (const FlagSpec& f : spec.flags) {
    if (f.name == name) return &f;
    for (const std::string& a : f.aliases)
      if (a == name) return &f;
  }
  return nullptr;
}

// Go's strconv.ParseBool.
std::optional<bool> ParseGoBool(std::string_view v) {
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True") return true;
  if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False") return false;
  return std::nullopt;
}

bool ParseInt64(std::string_view v, int64_t* out) {
  if (v.starts_with("+")) v.remove_prefix(1);
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
  return ec == std::errc() && end == v.data() + v.size() && !v.empty();
}

// urfave/cli's answer to a flag error: usage on stdout, the error logged.
int UsageError(const CommandSpec& spec, const Invocation& inv, const std::string& message) {
  inv.out << "Incorrect Usage: " << message << "\n\n" << CommandHelp(spec);
  return PlainError(inv, message);
}

}  // namespace

FlagSpec StringFlag(std::string name, std::string usage, bool required, std::vector<std::string> aliases) {
  FlagSpec f;
  f.name = std::move(name);
  f.usage = std::move(usage);
  f.required = required;
  f.aliases = std::move(aliases);
  return f;
}

FlagSpec BoolFlag(std::string name, std::string usage) {
  FlagSpec f = StringFlag(std::move(name), std::move(usage));
  f.kind = FlagSpec::Kind::kBool;
  return f;
}

FlagSpec DurationFlag(std::string name, std::string usage) {
  FlagSpec f = StringFlag(std::move(name), std::move(usage));
  f.kind = FlagSpec::Kind::kDuration;
  return f;
}

FlagSpec Int64Flag(std::string name, std::string usage) {
  FlagSpec f = StringFlag(std::move(name), std::move(usage));
  f.kind = FlagSpec::Kind::kInt64;
  return f;
}

std::string ParsedFlags::String(std::string_view name) const {
  auto it = values_.find(std::string(name));
  return it == values_.end() ? std::string() : it->second;
}

int64_t ParsedFlags::Int64(std::string_view name) const {
  int64_t v = 0;
  if (!ParseInt64(String(name), &v)) return 0;
  return v;
}

std::optional<ParsedFlags> ParseCommand(const CommandSpec& spec, const Invocation& inv, int* exit_code) {
  ParsedFlags flags;
  std::vector<std::string> positional;
  const std::vector<std::string>& args = inv.args;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') break;  // "-" and non-flags end the flags, as in Go
    std::string_view body = arg.substr(1);
    if (body.starts_with("-")) {
      body.remove_prefix(1);
      if (body.empty()) {  // "--" ends the flags and is consumed
        ++i;
        break;
      }
    }
    if (body.empty() || body[0] == '-' || body[0] == '=') {
      *exit_code = UsageError(spec, inv, "bad flag syntax: " + std::string(arg));
      return std::nullopt;
    }
    std::optional<std::string_view> value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    if (body == "h" || body == "help") {
      inv.out << CommandHelp(spec);
      *exit_code = 0;
      return std::nullopt;
    }
    const FlagSpec* flag = FindFlag(spec, body);
    if (flag == nullptr) {
      *exit_code = UsageError(spec, inv, "flag provided but not defined: -" + std::string(body));
      return std::nullopt;
    }
    std::string v;
    if (flag->kind == FlagSpec::Kind::kBool) {
      auto b = ParseGoBool(value.value_or("true"));
      if (!b) {
        *exit_code = UsageError(spec, inv, "invalid boolean value \"" + std::string(*value) + "\" for -" +
                                               std::string(body) + ": parse error");
        return std::nullopt;
      }
      v = *b ? "true" : "false";
    } else {
      if (value) {
        v = std::string(*value);
      } else if (i + 1 < args.size()) {
        v = args[++i];
      } else {
        *exit_code = UsageError(spec, inv, "flag needs an argument: -" + std::string(body));
        return std::nullopt;
      }
      int64_t n = 0;
      if ((flag->kind == FlagSpec::Kind::kInt64 && !ParseInt64(v, &n)) ||
          (flag->kind == FlagSpec::Kind::kDuration && !ParseGoDuration(v).ok())) {
        *exit_code = UsageError(spec, inv, "invalid value \"" + v + "\" for flag -" + std::string(body) +
                                               ": parse error");
        return std::nullopt;
      }
    }
    flags.values_[flag->name] = v;
  }
  for (; i < args.size(); ++i) positional.push_back(args[i]);

  std::vector<std::string> missing;
  for (const FlagSpec& f : spec.flags)
    if (f.required && !flags.Has(f.name)) missing.push_back(f.name);
  if (!missing.empty()) {
    inv.out << CommandHelp(spec);
    std::string names;
    for (const std::string& m : missing) names += (names.empty() ? "" : ", ") + m;
    *exit_code = PlainError(inv, missing.size() == 1 ? "Required flag \"" + names + "\" not set"
                                                     : "Required flags \"" + names + "\" not set");
    return std::nullopt;
  }
  if (!positional.empty()) {
    const std::string message = spec.name + " doesn't accept positional arguments";
    if (spec.positional_error_plain) {
      *exit_code = PlainError(inv, message);
    } else {
      inv.out << CommandHelp(spec);
      *exit_code = ExitError(inv, message);
    }
    return std::nullopt;
  }
  *exit_code = 0;
  return flags;
}

std::string CommandHelp(const CommandSpec& spec) {
  std::string out = "NAME:\n   praefect " + spec.name + " - " + spec.usage + "\n\nUSAGE:\n   praefect " + spec.name +
                    " [command options]\n";
  if (!spec.description.empty()) {
    out += "\nDESCRIPTION:\n";
    size_t start = 0;
    while (start <= spec.description.size()) {
      size_t end = spec.description.find('\n', start);
      if (end == std::string::npos) end = spec.description.size();
      std::string line = spec.description.substr(start, end - start);
      out += line.empty() ? "\n" : "   " + line + "\n";
      start = end + 1;
    }
  }
  // Two columns, as urfave/cli's tabwriter aligns them (padding 2).
  std::vector<std::pair<std::string, std::string>> rows;
  for (const FlagSpec& f : spec.flags) {
    std::string left = "--" + f.name;
    for (const std::string& a : f.aliases) left += ", --" + a;
    if (f.kind != FlagSpec::Kind::kBool) left += " value";
    std::string right = f.usage;
    if (f.kind == FlagSpec::Kind::kBool) right += " (default: false)";
    if (f.required) right += " (required)";
    rows.emplace_back(left, right);
  }
  rows.emplace_back("--help, -h", "show help");
  size_t width = 0;
  for (const auto& [left, right] : rows) width = std::max(width, left.size());
  out += "\nOPTIONS:\n";
  for (const auto& [left, right] : rows) out += "   " + left + std::string(width - left.size() + 2, ' ') + right + "\n";
  return out;
}

std::string GoLogTimestamp(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y/%m/%d %H:%M:%S ", &tm);
  return buf;
}

int PlainError(const Invocation& inv, std::string_view message) {
  inv.err << GoLogTimestamp(std::chrono::system_clock::now()) << message << "\n";
  return 1;
}

int ExitError(const Invocation& inv, std::string_view message) {
  inv.err << message << "\n";
  return 1;
}

std::string GoQuote(std::string_view text) { return QuoteForMessage(text, text.size() + 1); }

}  // namespace praefect::cli
