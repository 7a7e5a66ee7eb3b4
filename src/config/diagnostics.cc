#include "config/internal.h"

namespace praefect::config::internal {

KeyPath Join(const KeyPath& prefix, std::string_view key) {
  KeyPath out = prefix;
  out.emplace_back(key);
  return out;
}

std::string IndexKey(size_t index) { return "[" + std::to_string(index) + "]"; }

void Diagnostics::Error(KeyPath key, Pos pos, std::string message) {
  problems_.push_back(
      Problem{std::move(key), std::move(message), file_, pos.line, pos.column, Severity::kError});
}

void Diagnostics::Warning(KeyPath key, Pos pos, std::string message) {
  problems_.push_back(
      Problem{std::move(key), std::move(message), file_, pos.line, pos.column, Severity::kWarning});
}

void Diagnostics::Remember(const KeyPath& key, Pos pos) { positions_[KeyPathToString(key)] = pos; }

Pos Diagnostics::Where(const KeyPath& key) const {
  auto it = positions_.find(KeyPathToString(key));
  return it == positions_.end() ? Pos{} : it->second;
}

Pos Diagnostics::Nearest(KeyPath key) const {
  while (!key.empty()) {
    Pos pos = Where(key);
    if (pos.line != 0) return pos;
    key.pop_back();
  }
  return Pos{};
}

bool Diagnostics::has_errors() const {
  for (const Problem& p : problems_) {
    if (p.severity == Severity::kError) return true;
  }
  return false;
}

}  // namespace praefect::config::internal
