#include "config/problem.h"

#include <algorithm>
#include <tuple>

namespace praefect::config {

std::string KeyPathToString(const KeyPath& key) {
  std::string out;
  for (const std::string& part : key) {
    if (!out.empty() && !(part.size() > 1 && part.front() == '[')) out += '.';
    out += part;
  }
  return out;
}

std::string FormatProblemForHumans(const Problem& problem) {
  std::string out;
  if (!problem.file.empty()) {
    out += problem.file;
    if (problem.line > 0) {
      out += ':' + std::to_string(problem.line);
      if (problem.column > 0) out += ':' + std::to_string(problem.column);
    }
    out += ": ";
  }
  out += problem.severity == Severity::kError ? "error: " : "warning: ";
  std::string key = KeyPathToString(problem.key);
  if (!key.empty()) out += key + ": ";
  out += problem.message;
  return out;
}

void SortProblems(std::vector<Problem>* problems) {
  auto rank = [](const Problem& p) {
    // Problems without a line sort after those with one, within a severity.
    return std::make_tuple(p.severity == Severity::kError ? 0 : 1, p.line == 0 ? 1 : 0, p.line, p.column);
  };
  std::stable_sort(problems->begin(), problems->end(),
                   [&](const Problem& a, const Problem& b) { return rank(a) < rank(b); });
}

}  // namespace praefect::config
