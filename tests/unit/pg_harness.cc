#include "pg_harness.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

namespace praefect::testing {
namespace {

PgServer* g_server = nullptr;

[[noreturn]] void Die(const std::string& why) {
  std::cerr << "pg_harness: " << why << "\n";
  std::abort();
}

// In a forked child: drop to uid/gid (when non-zero), redirect output to
// `log` (when non-empty), exec argv. Never returns.
[[noreturn]] void ExecChild(const std::vector<std::string>& argv, unsigned uid, unsigned gid,
                            const std::string& cwd, const std::string& log, bool own_group) {
  if (own_group) setpgid(0, 0);
  if (!log.empty()) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
  }
  if (uid != 0) {
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
      perror("pg_harness: cannot drop privileges");
      _exit(127);
    }
  }
  // After setuid: a credential change would clear it again.
  if (own_group) prctl(PR_SET_PDEATHSIG, SIGQUIT);
  if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
  setenv("LC_ALL", "C", 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  perror(("pg_harness: exec " + argv[0]).c_str());
  _exit(127);
}

// Runs argv to completion; true when it exits 0.
bool RunWait(const std::vector<std::string>& argv, unsigned uid, unsigned gid, const std::string& cwd,
             const std::string& log = "") {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) ExecChild(argv, uid, gid, cwd, log, false);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

PgServer& PgServer::Shared() {
  if (g_server == nullptr) {
    g_server = new PgServer();
    std::atexit(&PgServer::AtExit);
    if (!g_server->Init()) Die("cannot start PostgreSQL (see above)");
  }
  return *g_server;
}

void PgServer::AtExit() {
  if (g_server != nullptr) g_server->Shutdown();
}

bool PgServer::Init() {
  const char* env_bindir = std::getenv("PRAEFECT_PG_BINDIR");
  bindir_ = env_bindir != nullptr ? env_bindir : "/usr/lib/postgresql/15/bin";
  if (access((bindir_ + "/initdb").c_str(), X_OK) != 0) {
    std::cerr << "pg_harness: " << bindir_
              << "/initdb not found: install Debian's postgresql package (scripts/setup) or set PRAEFECT_PG_BINDIR\n";
    return false;
  }
  char tmpl[] = "/tmp/praefect-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    perror("pg_harness: mkdtemp");
    return false;
  }
  dir_ = tmpl;
  if (getuid() == 0) {
    struct passwd* pw = getpwnam("nobody");
    if (pw == nullptr) {
      std::cerr << "pg_harness: running as root and there is no user \"nobody\" to run PostgreSQL as\n";
      return false;
    }
    run_as_uid_ = pw->pw_uid;
    run_as_gid_ = pw->pw_gid;
    if (chown(dir_.c_str(), run_as_uid_, run_as_gid_) != 0) {
      perror("pg_harness: chown");
      return false;
    }
  }
  const std::string log = dir_ + "/initdb.log";
  if (!RunWait({bindir_ + "/initdb", "-D", dir_ + "/data", "-U", user_, "-A", "trust", "-E", "UTF8", "--no-sync"},
               run_as_uid_, run_as_gid_, dir_, log)) {
    std::cerr << "pg_harness: initdb failed:\n" << ReadFile(log);
    return false;
  }
  return Start();
}

bool PgServer::Start() {
  if (pid_ > 0) return true;
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ExecChild({bindir_ + "/postgres", "-D", dir_ + "/data", "-k", dir_, "-p", std::to_string(port()), "-c",
               "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c",
               "full_page_writes=off", "-c", "max_connections=200"},
              run_as_uid_, run_as_gid_, dir_, dir_ + "/postgres.log", true);
  }
  setpgid(pid, pid);  // also from the parent, so kill(-pid) works at once
  pid_ = pid;
  return WaitReady();
}

bool PgServer::WaitReady() const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      std::cerr << "pg_harness: postgres exited during start-up:\n" << ReadFile(dir_ + "/postgres.log");
      const_cast<PgServer*>(this)->pid_ = -1;
      return false;
    }
    if (RunWait({bindir_ + "/pg_isready", "-q", "-h", dir_, "-p", std::to_string(port())}, 0, 0, "", "/dev/null"))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "pg_harness: postgres not ready within 60 s:\n" << ReadFile(dir_ + "/postgres.log");
  return false;
}

bool PgServer::Stop() {
  if (pid_ <= 0) return true;
  kill(pid_, SIGINT);  // fast shutdown: ends client sessions
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return true;
}

void PgServer::Shutdown() {
  if (pid_ > 0) {
    kill(pid_, SIGQUIT);  // immediate: nothing here is worth a checkpoint
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (waitpid(pid_, &status, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    kill(-pid_, SIGKILL);  // whatever is left of the group
    waitpid(pid_, &status, WNOHANG);
    pid_ = -1;
  }
  if (!dir_.empty() && std::getenv("PRAEFECT_PG_KEEP") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PgServer::ConnString(const std::string& dbname) const {
  return "host=" + dir_ + " port=" + std::to_string(port()) + " user=" + user_ + " dbname=" + dbname +
         " sslmode=disable";
}

bool PgServer::Psql(const std::string& dbname, const std::string& sql) const {
  const std::string log = dir_ + "/psql.log";
  if (RunWait({bindir_ + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", dir_, "-p", std::to_string(port()),
               "-U", user_, "-d", dbname, "-c", sql},
              0, 0, "", log))
    return true;
  std::cerr << "pg_harness: psql failed: " << sql << "\n" << ReadFile(log);
  return false;
}

std::string PgServer::CreateDatabase() {
  std::string name = "test_" + std::to_string(getpid()) + "_" + std::to_string(++next_db_);
  if (!Psql("postgres", "CREATE DATABASE " + name + " TEMPLATE template0"))
    Die("cannot create database " + name);
  return name;
}

}  // namespace praefect::testing
