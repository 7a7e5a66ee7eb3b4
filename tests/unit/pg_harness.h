#pragma once

// A real PostgreSQL for tests: Debian's server binaries
// (/usr/lib/postgresql/15/bin, override with PRAEFECT_PG_BINDIR), a cluster
// initdb'ed into a fresh mkdtemp directory, listening only on a unix socket
// in that directory (listen_addresses = '', so no TCP port is taken), with
// fsync off. One server per test binary, started on first use; each test
// takes a fresh database from CreateDatabase().
//
// Root: initdb and postgres refuse to run as root. When the test runs with
// uid 0 the server runs as "nobody" (setgid/setuid in the forked child) and
// the temporary directory is chowned to it; the test process still connects
// as the cluster's superuser "postgres" (trust authentication over the
// socket), so nothing else changes.
//
// Cleanup: the server is stopped and its directory removed by an atexit
// handler, which runs also when a cmocka test fails (cmocka longjmps past
// destructors but main still returns). The server runs in its own process
// group and gets SIGQUIT (immediate shutdown) when the test process dies
// (PR_SET_PDEATHSIG), so a crashed test does not leave a server behind.
//
// Not thread-safe: call from the test's main thread.

#include <string>

namespace praefect::testing {

class PgServer {
 public:
  // The process's server, started on the first call. Fails the test (via
  // stderr and abort) when PostgreSQL cannot be started: the message says why.
  static PgServer& Shared();

  // The directory holding the socket: the `host` of a connection.
  const std::string& socket_dir() const { return dir_; }
  int port() const { return 5432; }
  const std::string& user() const { return user_; }

  // Creates a database with a unique name from template0 and returns its name.
  std::string CreateDatabase();

  // A libpq connection string for `dbname`.
  std::string ConnString(const std::string& dbname) const;

  // Stops the server (fast shutdown) and waits for it, or starts it again on
  // the same socket and data. For outage tests. Return false with a message on
  // stderr on failure.
  [[nodiscard]] bool Stop();
  [[nodiscard]] bool Start();
  bool running() const { return pid_ > 0; }

  // Runs SQL as the superuser through psql; false on error (printed).
  [[nodiscard]] bool Psql(const std::string& dbname, const std::string& sql) const;

  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

 private:
  PgServer() = default;
  [[nodiscard]] bool Init();
  [[nodiscard]] bool WaitReady() const;
  void Shutdown();  // atexit: stop and remove the directory.
  static void AtExit();

  std::string bindir_;
  std::string dir_;        // socket directory and parent of data/
  std::string user_ = "postgres";
  int pid_ = -1;           // postmaster pid; its process group has the same id
  unsigned run_as_uid_ = 0;  // 0 = run as ourselves
  unsigned run_as_gid_ = 0;
  int next_db_ = 0;
};

}  // namespace praefect::testing
