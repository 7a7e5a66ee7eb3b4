#pragma once

// A fresh, migrated database on the harness's server (pg_harness.h) and
// PostgresDatastores on it, for the store's tests. Include before
// test_support.h.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "datastore/postgres/conn_string.h"
#include "datastore/postgres/migrator.h"
#include "datastore/postgres_datastore.h"
#include "pg_harness.h"

namespace praefect::testing {

inline datastore::postgres::Deadline In(std::chrono::milliseconds ms) {
  return datastore::postgres::Clock::now() + ms;
}

// Not thread-safe: create on the test's main thread; stores are thread-safe.
struct TestDb {
  TestDb() {
    using std::chrono::milliseconds;
    name = PgServer::Shared().CreateDatabase();
    conn.host = PgServer::Shared().socket_dir();
    conn.port = PgServer::Shared().port();
    conn.user = PgServer::Shared().user();
    conn.dbname = name;
    conn.sslmode = "disable";
    conninfo = datastore::postgres::ConnString(conn, milliseconds(5000));
    auto c = datastore::postgres::Connection::Open(conninfo, In(milliseconds(5000)), milliseconds(0));
    if (!c.ok()) Die("cannot connect to the test database: " + c.status().ToString());
    sql = std::move(*c);
    datastore::postgres::Migrator m(sql.get(), datastore::postgres::EmbeddedMigrations(), In(milliseconds(60000)));
    auto applied = m.Apply(false);
    if (!applied.ok()) Die("cannot migrate the test database: " + applied.status().ToString());
  }

  // A store with its own pool (as another praefect has).
  std::unique_ptr<datastore::PostgresDatastore> Store(bool listen = false) const {
    using std::chrono::milliseconds;
    return std::make_unique<datastore::PostgresDatastore>(
        std::make_unique<datastore::postgres::Pool>(conninfo, datastore::postgres::PoolOptions{}),
        listen ? std::make_unique<datastore::postgres::Listener>(conninfo, milliseconds(5000)) : nullptr);
  }

  // The first column of the first row of `query` ("" for none or NULL);
  // "ERROR: ..." when it fails, so a comparison shows it.
  std::string Scalar(const std::string& query) {
    auto rows = sql->Exec(query, {}, In(std::chrono::milliseconds(10000)));
    if (!rows.ok()) return "ERROR: " + rows.status().ToString();
    return rows->empty() ? "" : rows->Text(0, 0);
  }

  static void Die(const std::string& why) {
    fprintf(stderr, "%s\n", why.c_str());
    abort();
  }

  std::string name;
  config::DatabaseConnection conn;
  std::string conninfo;
  std::unique_ptr<datastore::postgres::Connection> sql;  // direct SQL for the tests
};

}  // namespace praefect::testing
