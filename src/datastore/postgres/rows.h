#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status_or.h"

namespace praefect::datastore::postgres {

// A query's result in text form, as libpq returns it: column names and
// rows of nullable strings. A value type; helpers convert on access.
struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  int64_t affected = 0;  // PQcmdTuples: rows an INSERT/UPDATE/DELETE touched

  size_t size() const { return rows.size(); }
  bool empty() const { return rows.empty(); }
  bool IsNull(size_t row, size_t col) const { return !rows.at(row).at(col).has_value(); }
  // The text of a value; "" for NULL.
  std::string Text(size_t row, size_t col) const { return rows.at(row).at(col).value_or(""); }
  // The value as an integer; INTERNAL when it is NULL or not a number.
  StatusOr<int64_t> Int64(size_t row, size_t col) const;
  // "t" / "f" as PostgreSQL prints booleans.
  bool Bool(size_t row, size_t col) const { return Text(row, col) == "t"; }
};

// A query parameter: std::nullopt is SQL NULL.
using Param = std::optional<std::string>;

}  // namespace praefect::datastore::postgres
