#include "datastore/postgres/rows.h"

#include <charconv>

namespace praefect::datastore::postgres {

StatusOr<int64_t> Rows::Int64(size_t row, size_t col) const {
  const auto& v = rows.at(row).at(col);
  const std::string name = col < columns.size() ? columns[col] : std::to_string(col);
  if (!v) return Internal("database returned NULL for column \"" + name + "\" where a number was expected");
  int64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size())
    return Internal("database returned \"" + *v + "\" for column \"" + name + "\" where a number was expected");
  return out;
}

}  // namespace praefect::datastore::postgres
