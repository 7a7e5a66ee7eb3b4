// Refusals: tokens, storages, paths, unimplemented methods.
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "auth/token.h"
#include "integration_test.h"
#include "repository-service.grpc.pb.h"
#include "scratch_repo.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file

namespace {

grpc::Status Exists(const std::shared_ptr<grpc::Channel>& channel, const gitaly::Repository& repo,
                    const std::string& authorization = "") {
  auto stub = gitaly::RepositoryService::NewStub(channel);
  gitaly::RepositoryExistsRequest req;
  *req.mutable_repository() = repo;
  gitaly::RepositoryExistsResponse resp;
  return stub->RepositoryExists(Ctx(authorization).get(), req, &resp);
}

void ExpectCode(const grpc::Status& st, grpc::StatusCode code, const std::string& needle, const std::string& what) {
  expect_that(st.error_code() == code, what + ": code " + std::to_string(code) + ", got " +
                                           std::to_string(st.error_code()) + " " + st.error_message());
  expect_that(st.error_message().find(needle) != std::string::npos,
              what + ": message \"" + st.error_message() + "\" containing \"" + needle + "\"");
}

}  // namespace

void AuthRefused(void**) {
  NodeProcess secured;
  assert_true(secured.Start("[auth]\ntoken = \"s3cret\"\n"));
  auto channel = secured.Channel();
  auto now = std::chrono::system_clock::now();
  gitaly::Repository repo = Repo("a.git");
  ExpectCode(Exists(channel, repo), grpc::StatusCode::UNAUTHENTICATED, "", "no token");
  ExpectCode(Exists(channel, repo, "Bearer garbage"), grpc::StatusCode::UNAUTHENTICATED, "", "malformed token");
  ExpectCode(Exists(channel, repo, praefect::auth::BearerV2("wrong", now)), grpc::StatusCode::PERMISSION_DENIED,
             "", "wrong secret");
  ExpectCode(Exists(channel, repo, praefect::auth::BearerV2("s3cret", now - std::chrono::seconds(120))),
             grpc::StatusCode::PERMISSION_DENIED, "", "stale token");
  ExpectCode(Exists(channel, repo, praefect::auth::BearerV2("s3cret", now)), grpc::StatusCode::OK, "", "good token");
  // Health needs no token.
  std::string data;
  grpc::Status health = RawUnary(channel, "/grpc.health.v1.Health/Check", "", &data);
  expect_that(health.ok() && data == std::string("\x08\x01", 2), "health SERVING without a token");
}

void BadRepositoriesRefused(void**) {
  auto channel = Node().Channel();
  ExpectCode(Exists(channel, Repo("a.git", "elsewhere")), grpc::StatusCode::INVALID_ARGUMENT,
             "no such storage: \"elsewhere\"", "unknown storage");
  ExpectCode(Exists(channel, Repo("../escape.git")), grpc::StatusCode::INVALID_ARGUMENT, "escapes root directory",
             "path escape");
  ExpectCode(Exists(channel, Repo("/etc")), grpc::StatusCode::INVALID_ARGUMENT, "absolute", "absolute path");
  ExpectCode(Exists(channel, Repo("")), grpc::StatusCode::INVALID_ARGUMENT, "relative path missing", "empty path");
  auto stub = gitaly::RepositoryService::NewStub(channel);
  gitaly::CreateRepositoryRequest create;
  *create.mutable_repository() = Repo("a/../../outside.git");
  gitaly::CreateRepositoryResponse resp;
  ExpectCode(stub->CreateRepository(Ctx().get(), create, &resp), grpc::StatusCode::INVALID_ARGUMENT,
             "escapes root directory", "create outside the storage");
  gitaly::RepositoryExistsRequest no_repo;
  gitaly::RepositoryExistsResponse exists;
  ExpectCode(stub->RepositoryExists(Ctx().get(), no_repo, &exists), grpc::StatusCode::INVALID_ARGUMENT,
             "empty Repository", "missing repository");
}

void UnimplementedMethods(void**) {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::FsckRequest fsck;
  *fsck.mutable_repository() = Repo("a.git");
  gitaly::FsckResponse resp;
  assert_int_equal(stub->Fsck(Ctx().get(), fsck, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  std::string out;
  assert_int_equal(RawUnary(Node().Channel(), "/gitaly.OperationService/UserCreateBranch", "", &out).error_code(),
                   grpc::StatusCode::UNIMPLEMENTED);
}
