#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace praefect::config {

enum class Severity { kError, kWarning };

// A key path in Praefect's JSON form (Gitaly's cfgerror.ValidationError.Key):
// table and key names, with array indices as separate "[N]" elements, e.g.
// {"virtual_storage", "[0]", "node", "[1]", "address"}.
using KeyPath = std::vector<std::string>;

// One thing wrong (error) or worth knowing (warning) about a configuration.
// `file` is the config file, the secrets file or a credential's path; `line`
// and `column` are 1-based, 0 when the problem has no single place (a key
// that is missing, say). `message` says what was expected and what was found.
struct Problem {
  KeyPath key;
  std::string message;
  std::string file;
  int line = 0;
  int column = 0;
  Severity severity = Severity::kError;
};

// "virtual_storage[0].node[1].address"; "" for an empty path.
std::string KeyPathToString(const KeyPath& key);

// For people, one line, no trailing newline:
// `config.toml:12:3: error: virtual_storage[0].node[1].address: expected ..., found "localhost:2305"`.
// Parts that are unknown (no file, no line, no key) are left out.
std::string FormatProblemForHumans(const Problem& problem);

// Errors first, then warnings; each group in file order (line, column), problems
// without a line last within their group. Stable otherwise.
void SortProblems(std::vector<Problem>* problems);

// Praefect's `configuration validate` output for the errors among `problems`
// (warnings are left out, as Praefect has none): encoding/json with a two-space
// indent and a trailing newline,
//   {"errors": [{"key": ["virtual_storage"], "message": "..."}]}
// with "key" omitted when empty. An error in `config_file` with no key but a
// line (a TOML syntax error) gets Praefect's "line L column C: " message
// prefix; an error in another file (secrets file, credential) gets
// "path[:line]: ". Returns "" when there is no error, since Praefect then
// prints nothing.
std::string FormatErrorsAsJson(const std::vector<Problem>& problems, std::string_view config_file);


}  // namespace praefect::config
