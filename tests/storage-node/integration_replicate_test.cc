// ReplicateRepository between two real nodes: the target pulls through
// git-remote-gitaly and ends with the source's refs, HEAD and checksum,
// whatever happened to the source in between.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <map>

#include "fs_util.h"
#include "gitaly_servers.h"
#include "request_context.h"
#include "integration_test.h"
#include "praefect/gitaly_newer.pb.h"
#include "repository-service.grpc.pb.h"
#include "scratch_repo.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file
using praefect::storagenode::EncodeGitalyServers;
using praefect::storagenode::PathExists;
using praefect::storagenode::ServerAddress;

namespace {

std::string ChecksumOn(const NodeProcess& node, const std::string& rel) {
  auto stub = gitaly::RepositoryService::NewStub(node.Channel());
  gitaly::CalculateChecksumRequest req;
  *req.mutable_repository() = Repo(rel, node.storage_name());
  gitaly::CalculateChecksumResponse resp;
  grpc::Status st = stub->CalculateChecksum(Ctx().get(), req, &resp);
  expect_that(st.ok(), "CalculateChecksum on " + node.storage_name() + ": " + st.error_message());
  return resp.checksum();
}

// ReplicateRepository on `target` from `source`, naming the source's address
// and token in gitaly-servers (nothing when `servers` is null).
grpc::Status Replicate(const NodeProcess& target, const NodeProcess& source, const std::string& rel,
                       const std::map<std::string, ServerAddress>* servers, const std::string& source_rel = "") {
  gitaly::ReplicateRepositoryRequest req;
  *req.mutable_repository() = Repo(rel, target.storage_name());
  *req.mutable_source() = Repo(source_rel.empty() ? rel : source_rel, source.storage_name());
  std::vector<std::pair<std::string, std::string>> md;
  if (servers != nullptr) md.emplace_back("gitaly-servers", EncodeGitalyServers(*servers));
  std::string out;
  return RawUnary(target.Channel(), "/gitaly.RepositoryService/ReplicateRepository", req.SerializeAsString(), &out,
                  "", md);
}

grpc::Status Replicate(const NodeProcess& target, const NodeProcess& source, const std::string& rel,
                       const std::string& token = "") {
  std::map<std::string, ServerAddress> servers = {{source.storage_name(), {"tcp://" + source.address(), token}}};
  return Replicate(target, source, rel, &servers);
}

std::string Refs(const std::string& bare) {
  return Git({"--git-dir=" + bare, "for-each-ref", "--format=%(objectname) %(refname)"}) +
         Git({"--git-dir=" + bare, "symbolic-ref", "HEAD"});
}

void ExpectEqualReplicas(const NodeProcess& a, const NodeProcess& b, const std::string& rel, const char* when) {
  std::string src = a.storage_path() + "/" + rel, dst = b.storage_path() + "/" + rel;
  std::string sum_a = ChecksumOn(a, rel), sum_b = ChecksumOn(b, rel);
  expect_that(sum_a == sum_b, std::string(when) + ": checksums " + sum_a + " (source) and " + sum_b + " (replica)");
  expect_that(sum_b == ReferenceChecksum(dst), std::string(when) + ": replica checksum equals the reference");
  std::string refs_a = Refs(src), refs_b = Refs(dst);
  expect_that(refs_a == refs_b, std::string(when) + ": refs differ:\nsource:\n" + refs_a + "replica:\n" + refs_b);
  Git({"--git-dir=" + dst, "fsck", "--no-progress", "--strict"});
}

// True when the node's scratch directory is missing or empty.
bool ScratchEmpty(const NodeProcess& node) {
  DIR* dir = opendir((node.storage_path() + "/+gitaly/tmp").c_str());
  if (dir == nullptr) return true;
  int entries = 0;
  while (struct dirent* e = readdir(dir)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++entries;
  }
  closedir(dir);
  return entries == 0;
}

}  // namespace

void ReplicateRepositoryMakesEqualReplicas(void**) {
  NodeProcess replica;
  assert_true(replica.Start("", "replica"));
  NodeProcess& source = Node();
  const std::string rel = "group/replicated.git";
  const std::string src = CreateRepo(rel);
  const std::string dst = replica.storage_path() + "/" + rel;

  // An empty source: the replica is created, empty.
  grpc::Status st = Replicate(replica, source, rel);
  expect_that(st.ok(), "replicating an empty repository: " + st.error_message());
  assert_true(praefect::storagenode::IsGitDirectory(dst));
  ExpectEqualReplicas(source, replica, rel, "empty");

  // Commits, tags, a second branch, HEAD on the second branch.
  std::string main_tip = PushCommits(src, source.root() + "/work-repl-main", "main", 5, true);
  PushCommits(src, source.root() + "/work-repl-dev", "dev", 3, true);
  Git({"--git-dir=" + src, "symbolic-ref", "HEAD", "refs/heads/dev"});
  st = Replicate(replica, source, rel);
  expect_that(st.ok(), "replicating after pushes: " + st.error_message());
  ExpectEqualReplicas(source, replica, rel, "after pushes");

  // A forced update (main rewound and rebuilt), a deleted branch, a deleted
  // and a moved tag, HEAD back on main, and a stray ref only on the replica.
  Git({"--git-dir=" + src, "update-ref", "refs/heads/main", main_tip + "~3"});
  std::string rebuilt = Git({"--git-dir=" + src, "commit-tree", "-p", main_tip + "~3", "-m", "rewritten history",
                             main_tip + "^{tree}"});
  Git({"--git-dir=" + src, "update-ref", "refs/heads/main", rebuilt.substr(0, 40)});
  Git({"--git-dir=" + src, "update-ref", "-d", "refs/heads/dev"});
  Git({"--git-dir=" + src, "tag", "-d", "main-v0"});
  Git({"--git-dir=" + src, "tag", "-f", "main-v1", rebuilt.substr(0, 40)});
  Git({"--git-dir=" + src, "symbolic-ref", "HEAD", "refs/heads/main"});
  Git({"--git-dir=" + dst, "update-ref", "refs/heads/stray", main_tip});
  st = Replicate(replica, source, rel);
  expect_that(st.ok(), "replicating after forced updates and deletions: " + st.error_message());
  ExpectEqualReplicas(source, replica, rel, "after forced updates and deletions");
  expect_that(ScratchEmpty(replica), "no leftovers in the replica's scratch directory");
}

void ReplicateRepositoryRefusals(void**) {
  // Inherited by the nodes and passed on to git-remote-gitaly: a dead source
  // fails in 2 s instead of 15.
  setenv("GITALY_CONNECT_TIMEOUT", "2", 1);
  NodeProcess replica;
  assert_true(replica.Start("", "replica"));
  NodeProcess locked;
  assert_true(locked.Start("[auth]\ntoken = \"source-secret\"\n", "locked"));
  NodeProcess& source = Node();
  const std::string rel = "group/refusals.git";
  CreateRepo(rel);

  grpc::Status st = Replicate(replica, source, rel, nullptr);
  assert_int_equal(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  expect_that(st.error_message().find("gitaly-servers") != std::string::npos, st.error_message());

  std::map<std::string, ServerAddress> wrong_storage = {{"elsewhere", {"tcp://" + source.address(), ""}}};
  st = Replicate(replica, source, rel, &wrong_storage);
  assert_int_equal(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  expect_that(st.error_message().find("\"default\"") != std::string::npos, st.error_message());

  st = Replicate(source, source, rel);
  assert_int_equal(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A missing source repository and an unreachable source fail and leave
  // nothing behind on the target.
  st = Replicate(replica, source, "group/missing.git");
  expect_that(!st.ok(), "replicating a missing repository fails");
  expect_that(st.error_message().find("storage \"default\"") != std::string::npos, st.error_message());
  assert_false(PathExists(replica.storage_path() + "/group/missing.git"));
  std::map<std::string, ServerAddress> dead = {{"default", {"tcp://127.0.0.1:1", ""}}};
  st = Replicate(replica, source, rel, &dead);
  expect_that(!st.ok(), "replicating from an unreachable source fails");
  assert_false(PathExists(replica.storage_path() + "/" + rel));
  expect_that(ScratchEmpty(replica), "no leftovers after failed replications");

  // A source with [auth]: the token in gitaly-servers is what gets in.
  std::string locked_repo = locked.storage_path() + "/" + rel;
  Git({"init", "--bare", "--quiet", locked_repo});
  PushCommits(locked_repo, locked.root() + "/work", "main", 2, false);
  st = Replicate(replica, locked, rel, "wrong-secret");
  expect_that(!st.ok(), "a wrong source token is refused");
  st = Replicate(replica, locked, rel, "source-secret");
  expect_that(st.ok(), "replicating with the source's token: " + st.error_message());
  std::string want = Refs(locked_repo), got = Refs(replica.storage_path() + "/" + rel);
  expect_that(want == got, "refs from the authenticated source:\n" + want + "got:\n" + got);
}
