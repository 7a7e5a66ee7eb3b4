#include "config/toml_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace praefect::config::internal {

std::string QuoteForMessage(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string DescribeValue(const toml::node& node, bool secret) {
  switch (node.type()) {
    case toml::node_type::string:
      return secret ? "a string" : QuoteForMessage(node.as_string()->get());
    case toml::node_type::integer:
      return secret ? "an integer" : "integer " + std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point: {
      if (secret) return "a float";
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%g", node.as_floating_point()->get());
      return std::string("float ") + buf;
    }
    case toml::node_type::boolean:
      return secret ? "a boolean" : std::string("boolean ") + (node.as_boolean()->get() ? "true" : "false");
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

Pos PosOf(const toml::source_region& region) {
  return Pos{static_cast<int>(region.begin.line), static_cast<int>(region.begin.column)};
}

TableReader::TableReader(const toml::table& table, KeyPath path, Diagnostics* diag)
    : table_(table), path_(std::move(path)), diag_(diag) {}

Pos TableReader::PosOf(std::string_view key) const {
  auto it = table_.find(key);
  if (it == table_.end()) return Pos{};
  // A section ([name], [[name]]) is reported where its header starts; a key where its name is.
  Pos value = internal::PosOf(it->second.source());
  if ((it->second.is_table() || it->second.is_array_of_tables()) && value.line != 0) return value;
  Pos pos = internal::PosOf(it->first.source());
  return pos.line != 0 ? pos : value;
}

const toml::node* TableReader::Take(std::string_view key) {
  auto it = table_.find(key);
  if (it == table_.end()) return nullptr;
  read_.emplace_back(key);
  diag_->Remember(PathOf(key), PosOf(key));
  return &it->second;
}

void TableReader::TypeError(std::string_view key, const toml::node& node, std::string_view expected,
                            bool secret) {
  diag_->Error(PathOf(key), PosOf(key),
               "expected " + std::string(expected) + ", found " + DescribeValue(node, secret));
}

void TableReader::String(std::string_view key, std::string* out) {
  const toml::node* node = Take(key);
  if (node == nullptr) return;
  if (const auto* s = node->as_string()) {
    *out = s->get();
  } else {
    TypeError(key, *node, "a string");
  }
}

void TableReader::Secret(std::string_view key, std::string* out) {
  const toml::node* node = Take(key);
  if (node == nullptr) return;
  if (const auto* s = node->as_string()) {
    *out = s->get();
  } else {
    TypeError(key, *node, "a string", /*secret=*/true);
  }
}

void TableReader::Bool(std::string_view key, bool* out) {
  const toml::node* node = Take(key);
  if (node == nullptr) return;
  if (const auto* b = node->as_boolean()) {
    *out = b->get();
  } else {
    TypeError(key, *node, "true or false");
  }
}

std::optional<int64_t> TableReader::IntegerIn(std::string_view key, int64_t min, int64_t max) {
  const toml::node* node = Take(key);
  if (node == nullptr) return std::nullopt;
  const auto* i = node->as_integer();
  if (i == nullptr) {
    TypeError(key, *node, min == 0 ? "a non-negative integer" : "an integer");
    return std::nullopt;
  }
  int64_t v = i->get();
  if (v < min || v > max) {
    std::string expected = min == 0 ? "a non-negative integer" : "an integer";
    expected += " no larger than " + std::to_string(max);
    if (min != 0) expected = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    TypeError(key, *node, expected);
    return std::nullopt;
  }
  return v;
}

void TableReader::Int(std::string_view key, int* out) {
  if (auto v = IntegerIn(key, std::numeric_limits<int>::min(), std::numeric_limits<int>::max())) {
    *out = static_cast<int>(*v);
  }
}

void TableReader::Uint32(std::string_view key, uint32_t* out) {
  if (auto v = IntegerIn(key, 0, std::numeric_limits<uint32_t>::max())) *out = static_cast<uint32_t>(*v);
}

void TableReader::GoDuration(std::string_view key, Duration* out) {
  const toml::node* node = Take(key);
  if (node == nullptr) return;
  if (const auto* i = node->as_integer(); i != nullptr && i->get() == 0) {
    *out = Duration(0);
    return;
  }
  const auto* s = node->as_string();
  if (s == nullptr) {
    std::string found = DescribeValue(*node);
    if (node->is_integer()) found += " (Praefect would read a bare number as nanoseconds)";
    diag_->Error(PathOf(key), PosOf(key),
                 "expected a duration string such as \"30s\", \"5m\" or \"1h30m\", found " + found);
    return;
  }
  StatusOr<Duration> d = ParseGoDuration(s->get());
  if (!d.ok()) {
    diag_->Error(PathOf(key), PosOf(key), d.status().message());
    return;
  }
  *out = *d;
}

void TableReader::Numbers(std::string_view key, std::vector<double>* out) {
  const toml::node* node = Take(key);
  if (node == nullptr) return;
  const auto* array = node->as_array();
  if (array == nullptr) {
    TypeError(key, *node, "an array of numbers such as [0.1, 1, 10]");
    return;
  }
  std::vector<double> values;
  bool ok = true;
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    if (const auto* f = element.as_floating_point()) {
      if (!std::isfinite(f->get())) {
        diag_->Error(Join(PathOf(key), IndexKey(i)), internal::PosOf(element.source()),
                     "expected a finite number, found " + DescribeValue(element));
        ok = false;
      }
      values.push_back(f->get());
    } else if (const auto* n = element.as_integer()) {
      values.push_back(static_cast<double>(n->get()));
    } else {
      diag_->Error(Join(PathOf(key), IndexKey(i)), internal::PosOf(element.source()),
                   "expected a number, found " + DescribeValue(element));
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
}

const toml::table* TableReader::Table(std::string_view key) {
  const toml::node* node = Take(key);
  if (node == nullptr) return nullptr;
  if (const auto* t = node->as_table()) return t;
  std::string expected = "a table ([" + KeyPathToString(PathOf(key)) + "])";
  if (node->is_array()) expected += "; write [" + KeyPathToString(PathOf(key)) + "], not [[...]]";
  TypeError(key, *node, expected);
  return nullptr;
}

std::vector<const toml::table*> TableReader::TableArray(std::string_view key) {
  std::vector<const toml::table*> out;
  const toml::node* node = Take(key);
  if (node == nullptr) return out;
  std::string header = "[[" + KeyPathToString(PathOf(key)) + "]]";
  const auto* array = node->as_array();
  if (array == nullptr) {
    TypeError(key, *node, "an array of tables (" + header + " sections)");
    return out;
  }
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    KeyPath element_path = Join(PathOf(key), IndexKey(i));
    diag_->Remember(element_path, internal::PosOf(element.source()));
    if (const auto* t = element.as_table()) {
      out.push_back(t);
    } else {
      diag_->Error(element_path, internal::PosOf(element.source()),
                   "expected a table (a " + header + " section), found " + DescribeValue(element));
    }
  }
  return out;
}

bool TableReader::IsSet(std::string_view key) const {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return false;
  if (const auto* s = node->as_string()) return !s->get().empty();
  if (const auto* b = node->as_boolean()) return b->get();
  if (const auto* i = node->as_integer()) return i->get() != 0;
  if (const auto* f = node->as_floating_point()) return f->get() != 0;
  if (const auto* t = node->as_table()) return !t->empty();
  if (const auto* a = node->as_array()) return !a->empty();
  return true;
}

void TableReader::Ignore(std::string_view key, bool warn, std::string_view why) {
  if (Take(key) == nullptr) return;
  if (warn) diag_->Warning(PathOf(key), PosOf(key), std::string(why));
}

void TableReader::Finish() {
  for (auto&& [key, node] : table_) {
    if (std::find(read_.begin(), read_.end(), key.str()) != read_.end()) continue;
    Pos pos = PosOf(key.str());
    diag_->Warning(PathOf(key.str()), pos,
                   "unknown key: praefect does not know \"" + KeyPathToString(PathOf(key.str())) +
                       "\" and ignores it (a typo, or a key of a newer Praefect?)");
  }
}

}  // namespace praefect::config::internal
