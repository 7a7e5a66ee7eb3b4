// The storage node as a client sees it: the real binary as a child process,
// grpc++ stubs, real git on temporary storages.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "auth/token.h"
#include "fs_util.h"
#include "request_context.h"
#include "integration_test.h"
#include "praefect/gitaly_newer.pb.h"
#include "ref.grpc.pb.h"
#include "repository-service.grpc.pb.h"
#include "scratch_repo.h"
#include "server.grpc.pb.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file
using praefect::storagenode::IsGitDirectory;
using praefect::storagenode::PathExists;

namespace praefect::storagenode::testing {

NodeProcess& Node() {
  static NodeProcess node;
  return node;
}

std::string CreateRepo(const std::string& rel) {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::CreateRepositoryRequest req;
  *req.mutable_repository() = Repo(rel);
  gitaly::CreateRepositoryResponse resp;
  grpc::Status st = stub->CreateRepository(Ctx().get(), req, &resp);
  expect_that(st.ok(), "CreateRepository " + rel + ": " + st.error_message());
  return Node().storage_path() + "/" + rel;
}

}  // namespace praefect::storagenode::testing

namespace {

grpc::Status CallRaw(const std::string& method, const google::protobuf::Message& req,
                     google::protobuf::Message* resp) {
  std::string out;
  grpc::Status st = RawUnary(Node().Channel(), method, req.SerializeAsString(), &out);
  if (st.ok() && resp) resp->ParseFromString(out);
  return st;
}

bool Exists(const std::string& rel) {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::RepositoryExistsRequest req;
  *req.mutable_repository() = Repo(rel);
  gitaly::RepositoryExistsResponse resp;
  grpc::Status st = stub->RepositoryExists(Ctx().get(), req, &resp);
  expect_that(st.ok(), "RepositoryExists: " + st.error_message());
  return resp.exists();
}

std::string Checksum(const std::string& rel) {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::CalculateChecksumRequest req;
  *req.mutable_repository() = Repo(rel);
  gitaly::CalculateChecksumResponse resp;
  grpc::Status st = stub->CalculateChecksum(Ctx().get(), req, &resp);
  expect_that(st.ok(), "CalculateChecksum: " + st.error_message());
  return resp.checksum();
}

void HealthServing(void**) {
  // grpc.health.v1.HealthCheckRequest{service: ""} is an empty message; the
  // response {status: SERVING(1)} is the bytes 08 01.
  std::string data;
  grpc::Status result = RawUnary(Node().Channel(), "/grpc.health.v1.Health/Check", "", &data);
  expect_that(result.ok(), "health check ok: " + result.error_message());
  expect_that(data == std::string("\x08\x01", 2), "SERVING in the health response");
}

void ServerInfoReportsStorages(void**) {
  auto stub = gitaly::ServerService::NewStub(Node().Channel());
  gitaly::ServerInfoResponse a, b;
  assert_true(stub->ServerInfo(Ctx().get(), gitaly::ServerInfoRequest(), &a).ok());
  assert_true(stub->ServerInfo(Ctx().get(), gitaly::ServerInfoRequest(), &b).ok());
  std::string git = Git({"--version"});
  expect_that(git.find(a.git_version()) != std::string::npos && !a.git_version().empty(),
              "git_version \"" + a.git_version() + "\" in \"" + git + "\"");
  assert_false(a.server_version().empty());
  assert_int_equal(a.storage_statuses_size(), 1);
  const auto& s = a.storage_statuses(0);
  assert_string_equal(s.storage_name().c_str(), "default");
  assert_true(s.readable());
  assert_true(s.writeable());
  assert_false(s.fs_type().empty());
  assert_int_equal(s.filesystem_id().size(), 36);
  assert_string_equal(s.filesystem_id().c_str(), b.storage_statuses(0).filesystem_id().c_str());
  std::ifstream meta(Node().storage_path() + "/.gitaly-metadata");
  std::string text((std::istreambuf_iterator<char>(meta)), std::istreambuf_iterator<char>());
  expect_that(text.find(s.filesystem_id()) != std::string::npos, "the id persisted in .gitaly-metadata");
}

void CreateExistsRemove(void**) {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  const std::string rel = "group/create.git";
  assert_false(Exists(rel));
  std::string path = CreateRepo(rel);
  assert_true(Exists(rel));
  assert_true(IsGitDirectory(path));
  gitaly::CreateRepositoryRequest again;
  *again.mutable_repository() = Repo(rel);
  gitaly::CreateRepositoryResponse r;
  grpc::Status st = stub->CreateRepository(Ctx().get(), again, &r);
  assert_int_equal(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  gitaly::RemoveRepositoryRequest rm;
  *rm.mutable_repository() = Repo(rel);
  gitaly::RemoveRepositoryResponse rm_resp;
  st = CallRaw("/gitaly.RepositoryService/RemoveRepository", rm, &rm_resp);
  expect_that(st.ok(), "RemoveRepository: " + st.error_message());
  assert_false(Exists(rel));
  assert_false(PathExists(path));
  st = CallRaw("/gitaly.RepositoryService/RemoveRepository", rm, &rm_resp);
  assert_int_equal(st.error_code(), grpc::StatusCode::NOT_FOUND);
  // Nothing is left behind in the scratch directory.
  std::string leftovers = Git({"-C", Node().storage_path(), "--version"});
  struct stat st_tmp;
  expect_that(stat((Node().storage_path() + "/+gitaly/tmp").c_str(), &st_tmp) == 0 && st_tmp.st_nlink == 2,
              "an empty +gitaly/tmp after create and remove");
}

void ChecksumMatchesReference(void**) {
  std::string path = CreateRepo("checksum.git");
  assert_string_equal(Checksum("checksum.git").c_str(), "0000000000000000000000000000000000000000");
  PushCommits(path, Node().root() + "/work-checksum-main", "main", 3, true);
  PushCommits(path, Node().root() + "/work-checksum-dev", "dev", 2, true);
  Git({"--git-dir=" + path, "symbolic-ref", "HEAD", "refs/heads/main"});
  std::string want = ReferenceChecksum(path);
  assert_int_not_equal(want.size(), 0);
  assert_string_equal(Checksum("checksum.git").c_str(), want.c_str());
  // Refs outside Gitaly's allow-list do not count.
  Git({"--git-dir=" + path, "update-ref", "refs/pipelines/1", "refs/heads/main"});
  assert_string_equal(Checksum("checksum.git").c_str(), want.c_str());
  // Maintenance leaves refs, and so the checksum, alone.
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::GarbageCollectRequest gc;
  *gc.mutable_repository() = Repo("checksum.git");
  gitaly::GarbageCollectResponse gc_resp;
  assert_true(stub->GarbageCollect(Ctx().get(), gc, &gc_resp).ok());
  gitaly::RepackFullRequest full;
  *full.mutable_repository() = Repo("checksum.git");
  full.set_create_bitmap(true);
  gitaly::RepackFullResponse full_resp;
  assert_true(stub->RepackFull(Ctx().get(), full, &full_resp).ok());
  gitaly::RepackIncrementalRequest inc;
  *inc.mutable_repository() = Repo("checksum.git");
  gitaly::RepackIncrementalResponse inc_resp;
  assert_true(stub->RepackIncremental(Ctx().get(), inc, &inc_resp).ok());
  gitaly::CleanupRequest cl;
  *cl.mutable_repository() = Repo("checksum.git");
  gitaly::CleanupResponse cl_resp;
  assert_true(stub->Cleanup(Ctx().get(), cl, &cl_resp).ok());
  assert_string_equal(Checksum("checksum.git").c_str(), want.c_str());
  gitaly::RepositorySizeRequest size;
  *size.mutable_repository() = Repo("checksum.git");
  gitaly::RepositorySizeResponse size_resp;
  assert_true(stub->RepositorySize(Ctx().get(), size, &size_resp).ok());
  assert_true(size_resp.size() > 0);
  // A missing repository is NOT_FOUND, not a zero checksum.
  gitaly::CalculateChecksumRequest missing;
  *missing.mutable_repository() = Repo("missing.git");
  gitaly::CalculateChecksumResponse missing_resp;
  assert_int_equal(stub->CalculateChecksum(Ctx().get(), missing, &missing_resp).error_code(),
                   grpc::StatusCode::NOT_FOUND);
}

}  // namespace

void RefsAndWriteRef(void**);
void AuthRefused(void**);
void BadRepositoriesRefused(void**);
void UnimplementedMethods(void**);
void ConcurrentWrites(void**);

static int StartNode(void**) { return Node().Start() ? 0 : -1; }
static int StopNode(void**) {
  Node().Stop();
  return 0;
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(HealthServing),
      cmocka_unit_test(ServerInfoReportsStorages),
      cmocka_unit_test(CreateExistsRemove),
      cmocka_unit_test(ChecksumMatchesReference),
      cmocka_unit_test(RefsAndWriteRef),
      cmocka_unit_test(ReplicateRepositoryMakesEqualReplicas),
      cmocka_unit_test(ReplicateRepositoryRefusals),
      cmocka_unit_test(GetBlobLimitAndMissing),
      cmocka_unit_test(GetBlobStreamsLargeBlobWithBoundedMemory),
      cmocka_unit_test(GetSnapshotRoundTrips),
      cmocka_unit_test(CreateRepositoryFromSnapshotOverHttp),
      cmocka_unit_test(SmartHttpInfoRefsAdvertisesRefs),
      cmocka_unit_test(SmartHttpFetchesPack),
      cmocka_unit_test(SmartHttpPushUpdatesRef),
      cmocka_unit_test(SmartHttpRefusesBadToken),
      cmocka_unit_test(BadRepositoriesRefused),
      cmocka_unit_test(UnimplementedMethods),
      cmocka_unit_test(ConcurrentWrites),
      cmocka_unit_test(AuthRefused),
      cmocka_unit_test(CrashLeavesNoTornRepository),
  };
  return cmocka_run_group_tests(tests, StartNode, StopNode);
}
