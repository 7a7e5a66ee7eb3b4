#pragma once

// Internal to src/config, the only place toml++ is seen. Nothing here throws.

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "config/internal.h"

namespace praefect::config::internal {

// "integer 5", "boolean true", "\"text\"", "a table", ...: how a message names
// a value that was found. With `secret`, never the value itself.
std::string DescribeValue(const toml::node& node, bool secret = false);

// A string for a message: double-quoted, with \" \\ and control characters escaped.
std::string QuoteForMessage(std::string_view text);

Pos PosOf(const toml::source_region& region);

// Reads the keys of one TOML table into typed fields, reporting a wrong type
// or value as an error at the key's line, and (in Finish) every key that was
// never asked for as an "unknown key" warning. Absent keys leave the field at
// its default. Not thread-safe.
class TableReader {
 public:
  // REQUIRES: `table` and `diag` outlive the reader.
  TableReader(const toml::table& table, KeyPath path, Diagnostics* diag);
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;

  const KeyPath& path() const { return path_; }
  KeyPath PathOf(std::string_view key) const { return Join(path_, key); }
  bool Has(std::string_view key) const { return table_.contains(key); }

  void String(std::string_view key, std::string* out);
  // Like String, but a wrong value is never echoed in a message.
  void Secret(std::string_view key, std::string* out);
  void Bool(std::string_view key, bool* out);
  void Int(std::string_view key, int* out);
  void Uint32(std::string_view key, uint32_t* out);
  // A Go duration string ("30s", "5m", "1h30m"). The integer 0 is taken as
  // zero (Praefect's own example writes `scheduling_interval = 0`); any
  // other integer is an error, since Praefect would read it as nanoseconds.
  void GoDuration(std::string_view key, Duration* out);
  // An array of numbers (integers are taken as floats).
  void Numbers(std::string_view key, std::vector<double>* out);

  // The sub-table `key`, or nullptr when absent or not a table (an error).
  const toml::table* Table(std::string_view key);
  // The tables of the array of tables `key` ([[key]]); empty when absent or
  // of the wrong type (an error).
  std::vector<const toml::table*> TableArray(std::string_view key);

  // A key Praefect knows but praefect does not act upon: read it (any type),
  // and when `warn` is set, warn with `why`.
  void Ignore(std::string_view key, bool warn, std::string_view why);
  // True when `key` holds something other than "", false, 0 or an empty table/array.
  bool IsSet(std::string_view key) const;

  // Warns about every key of the table that was not read.
  void Finish();

  Pos PosOf(std::string_view key) const;
  Diagnostics* diag() const { return diag_; }

 private:
  // The value of `key`, marked as read and its position remembered; nullptr when absent.
  const toml::node* Take(std::string_view key);
  std::optional<int64_t> IntegerIn(std::string_view key, int64_t min, int64_t max);
  void TypeError(std::string_view key, const toml::node& node, std::string_view expected,
                 bool secret = false);

  const toml::table& table_;
  KeyPath path_;
  Diagnostics* diag_;
  std::vector<std::string> read_;
};

}  // namespace praefect::config::internal

namespace praefect::config::internal {

// Phase 1: the TOML tree into `out->config`, with type errors and unknown-key
// warnings. decode.cc (sections) and decode_storage.cc (virtual storages,
// the legacy node list, [[registry.method]]).
void Decode(const toml::table& root, Decoded* out, Diagnostics* diag);
void DecodeVirtualStorages(TableReader& root, Decoded* out);
void DecodeRegistry(TableReader& root, Decoded* out);

}  // namespace praefect::config::internal
