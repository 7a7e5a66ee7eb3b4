// CreateRepositoryFromSnapshot: a snapshot taken with GetSnapshot, served by
// a one-request HTTP server in the test, becomes an equal repository.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "fs_util.h"
#include "integration_test.h"
#include "repository-service.grpc.pb.h"
#include "scratch_repo.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file
using praefect::storagenode::PathExists;

namespace {

// Answers one HTTP request on 127.0.0.1:<port()>: 200 with `body` when the
// Authorization header equals `want_auth`, 401 otherwise.
class OneShotHttp {
 public:
  OneShotHttp(std::string body, std::string want_auth) : body_(std::move(body)), want_auth_(std::move(want_auth)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd_, 1) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      fail_msg("test HTTP server: cannot listen");
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotHttp() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string Url(const std::string& path = "/snapshot.tar") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  void Serve() {
    int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return;
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = read(conn, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    bool authorized = request.find("\r\nAuthorization: " + want_auth_ + "\r\n") != std::string::npos;
    std::string response =
        authorized ? "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: " +
                         std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_
                   : std::string("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    size_t done = 0;
    while (done < response.size()) {
      ssize_t n = write(conn, response.data() + done, response.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    close(conn);
  }

  std::string body_;
  std::string want_auth_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

std::string Snapshot(const std::string& rel) {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::GetSnapshotRequest req;
  *req.mutable_repository() = Repo(rel);
  auto ctx = Ctx();
  auto reader = stub->GetSnapshot(ctx.get(), req);
  gitaly::GetSnapshotResponse msg;
  std::string tar;
  while (reader->Read(&msg)) tar += msg.data();
  grpc::Status st = reader->Finish();
  expect_that(st.ok(), "GetSnapshot: " + st.error_message());
  return tar;
}

grpc::Status FromSnapshot(const std::string& rel, const std::string& url, const std::string& auth) {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::CreateRepositoryFromSnapshotRequest req;
  *req.mutable_repository() = Repo(rel);
  req.set_http_url(url);
  req.set_http_auth(auth);
  gitaly::CreateRepositoryFromSnapshotResponse resp;
  return stub->CreateRepositoryFromSnapshot(Ctx().get(), req, &resp);
}

std::string Checksum(const std::string& rel) {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::CalculateChecksumRequest req;
  *req.mutable_repository() = Repo(rel);
  gitaly::CalculateChecksumResponse resp;
  grpc::Status st = stub->CalculateChecksum(Ctx().get(), req, &resp);
  expect_that(st.ok(), "CalculateChecksum " + rel + ": " + st.error_message());
  return resp.checksum();
}

}  // namespace

void CreateRepositoryFromSnapshotOverHttp(void**) {
  const std::string src = CreateRepo("snap/source.git");
  PushCommits(src, Node().root() + "/work-snap", "main", 4, true);
  Git({"--git-dir=" + src, "symbolic-ref", "HEAD", "refs/heads/main"});
  const std::string tar = Snapshot("snap/source.git");
  const std::string auth = "Bearer snapshot-secret";

  {
    OneShotHttp http(tar, auth);
    grpc::Status st = FromSnapshot("snap/copy.git", http.Url(), auth);
    expect_that(st.ok(), "CreateRepositoryFromSnapshot: " + st.error_message());
  }
  const std::string copy = Node().storage_path() + "/snap/copy.git";
  assert_string_equal(Checksum("snap/copy.git").c_str(), Checksum("snap/source.git").c_str());
  assert_string_equal(Checksum("snap/copy.git").c_str(), ReferenceChecksum(copy).c_str());
  Git({"--git-dir=" + copy, "fsck", "--no-progress", "--strict"});
  assert_true(PathExists(copy + "/config"));

  // Refusals leave nothing behind.
  {
    OneShotHttp http(tar, auth);
    grpc::Status st = FromSnapshot("snap/unauthorized.git", http.Url(), "Bearer wrong");
    expect_that(!st.ok() && st.error_message().find("401") != std::string::npos,
                "a 401 from the server fails the call: " + st.error_message());
  }
  assert_false(PathExists(Node().storage_path() + "/snap/unauthorized.git"));
  {
    OneShotHttp http("this is not a tar archive", auth);
    grpc::Status st = FromSnapshot("snap/garbage.git", http.Url(), auth);
    expect_that(!st.ok(), "a body that is not a snapshot fails the call");
  }
  assert_false(PathExists(Node().storage_path() + "/snap/garbage.git"));
  grpc::Status st = FromSnapshot("snap/copy.git", "http://127.0.0.1:1/x", auth);
  assert_int_equal(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  st = FromSnapshot("snap/ftp.git", "ftp://127.0.0.1/x", auth);
  assert_int_equal(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  st = FromSnapshot("snap/refused.git", "http://127.0.0.1:1/x", auth);
  expect_that(!st.ok(), "an unreachable snapshot server fails the call");
  assert_false(PathExists(Node().storage_path() + "/snap/refused.git"));
}
