// Praefect's `configuration validate` JSON, byte for byte as Go's
// encoding/json Encoder with SetIndent("", "  ") writes it.

#include "common/json.h"
#include "config/problem.h"

namespace praefect::config {


std::string FormatErrorsAsJson(const std::vector<Problem>& problems, std::string_view config_file) {
  std::string out;
  bool first = true;
  for (const Problem& p : problems) {
    if (p.severity != Severity::kError) continue;
    out += first ? "{\n  \"errors\": [\n" : ",\n";
    first = false;
    out += "    {\n";
    if (!p.key.empty()) {
      out += "      \"key\": [\n";
      for (size_t i = 0; i < p.key.size(); ++i) {
        out += "        " + JsonQuote(p.key[i]) + (i + 1 < p.key.size() ? ",\n" : "\n");
      }
      out += "      ]";
      out += p.message.empty() ? "\n" : ",\n";
    }
    if (!p.message.empty()) {
      std::string message = p.message;
      if (!p.file.empty() && p.file != config_file) {
        // A secrets file or credential: JSON has no place for the file but the message.
        std::string where = p.file;
        if (p.line > 0) where += ":" + std::to_string(p.line);
        message = where + ": " + message;
      } else if (p.key.empty() && p.line > 0) {
        // A TOML syntax error: Praefect prefixes the position.
        message = "line " + std::to_string(p.line) + " column " + std::to_string(p.column) + ": " + message;
      }
      out += "      \"message\": " + JsonQuote(message) + "\n";
    }
    out += "    }";
  }
  if (!first) out += "\n  ]\n}\n";
  return out;
}

}  // namespace praefect::config
