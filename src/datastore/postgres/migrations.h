#pragma once

#include <string_view>
#include <vector>

namespace praefect::datastore::postgres {

// One schema migration: sql/migrations/<id>.up.sql and <id>.down.sql.
struct Migration {
  std::string_view id;  // "0001_initial_schema"; the order of ids is the order of application
  std::string_view up;
  std::string_view down;
};

// The migrations compiled into this binary, in id order.
const std::vector<Migration>& EmbeddedMigrations();

}  // namespace praefect::datastore::postgres
