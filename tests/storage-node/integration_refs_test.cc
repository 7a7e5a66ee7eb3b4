// RefService and WriteRef against a repository filled with real git.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "integration_test.h"
#include "ref.grpc.pb.h"
#include "repository-service.grpc.pb.h"
#include "scratch_repo.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file

namespace {

grpc::Status WriteRef(const std::string& rel, const std::string& ref, const std::string& rev,
                      const std::string& old_rev = "") {
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::WriteRefRequest req;
  *req.mutable_repository() = Repo(rel);
  req.set_ref(ref);
  req.set_revision(rev);
  req.set_old_revision(old_rev);
  gitaly::WriteRefResponse resp;
  return stub->WriteRef(Ctx().get(), req, &resp);
}

std::vector<std::string> AllBranchNames(const std::string& rel, int* messages) {
  auto stub = gitaly::RefService::NewStub(Node().Channel());
  gitaly::FindAllBranchNamesRequest req;
  *req.mutable_repository() = Repo(rel);
  auto ctx = Ctx();
  auto reader = stub->FindAllBranchNames(ctx.get(), req);
  gitaly::FindAllBranchNamesResponse msg;
  std::vector<std::string> names;
  *messages = 0;
  while (reader->Read(&msg)) {
    ++*messages;
    for (const auto& n : msg.names()) names.push_back(n);
  }
  grpc::Status st = reader->Finish();
  expect_that(st.ok(), "FindAllBranchNames: " + st.error_message());
  return names;
}

std::string DefaultBranch(const std::string& rel) {
  auto stub = gitaly::RefService::NewStub(Node().Channel());
  gitaly::FindDefaultBranchNameRequest req;
  *req.mutable_repository() = Repo(rel);
  gitaly::FindDefaultBranchNameResponse resp;
  grpc::Status st = stub->FindDefaultBranchName(Ctx().get(), req, &resp);
  expect_that(st.ok(), "FindDefaultBranchName: " + st.error_message());
  return resp.name();
}

bool RefExists(const std::string& rel, const std::string& ref, grpc::StatusCode want = grpc::StatusCode::OK) {
  auto stub = gitaly::RefService::NewStub(Node().Channel());
  gitaly::RefExistsRequest req;
  *req.mutable_repository() = Repo(rel);
  req.set_ref(ref);
  gitaly::RefExistsResponse resp;
  grpc::Status st = stub->RefExists(Ctx().get(), req, &resp);
  expect_that(st.error_code() == want, "RefExists " + ref + ": " + st.error_message());
  return resp.value();
}

}  // namespace

void RefsAndWriteRef(void**) {
  const std::string rel = "refs.git";
  std::string path = CreateRepo(rel);
  assert_string_equal(DefaultBranch(rel).c_str(), "");
  std::string main_tip = PushCommits(path, Node().root() + "/work-refs", "main", 2, false);
  // 25 branches: more than one FindAllBranchNames message.
  std::string input;
  for (int i = 0; i < 25; ++i) input += "create refs/heads/b" + std::to_string(i) + " " + main_tip + "\n";
  Git({"--git-dir=" + path, "update-ref", "--stdin"}, input);

  int messages = 0;
  auto names = AllBranchNames(rel, &messages);
  std::string listed = Git({"--git-dir=" + path, "for-each-ref", "--format=%(refname)", "refs/heads/"});
  std::string joined;
  for (const auto& n : names) joined += n + "\n";
  assert_string_equal(joined.c_str(), listed.c_str());
  assert_int_equal(names.size(), 26);
  assert_true(messages >= 2);

  // HEAD names main (pushed first); WriteRef HEAD moves it.
  Git({"--git-dir=" + path, "symbolic-ref", "HEAD", "refs/heads/main"});
  assert_string_equal(DefaultBranch(rel).c_str(), "refs/heads/main");
  assert_true(WriteRef(rel, "HEAD", "refs/heads/b7").ok());
  assert_string_equal(Git({"--git-dir=" + path, "symbolic-ref", "HEAD"}).c_str(), "refs/heads/b7\n");
  assert_string_equal(DefaultBranch(rel).c_str(), "refs/heads/b7");

  // WriteRef: create, compare-and-swap, refused swap leaves the ref alone.
  std::string parent = Git({"--git-dir=" + path, "rev-parse", "main~1"}).substr(0, 40);
  assert_true(WriteRef(rel, "refs/heads/feature", main_tip).ok());
  assert_true(WriteRef(rel, "refs/heads/feature", parent, main_tip).ok());
  grpc::Status stale = WriteRef(rel, "refs/heads/feature", main_tip, main_tip);
  assert_false(stale.ok());
  assert_string_equal(Git({"--git-dir=" + path, "rev-parse", "refs/heads/feature"}).substr(0, 40).c_str(),
                      parent.c_str());
  assert_int_equal(WriteRef(rel, "", main_tip).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  assert_int_equal(WriteRef(rel, "feature", main_tip).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  assert_true(RefExists(rel, "refs/heads/feature"));
  assert_false(RefExists(rel, "refs/heads/nope"));
  RefExists(rel, "heads/feature", grpc::StatusCode::INVALID_ARGUMENT);

  // FindBranch by short and full name; a missing branch is an empty answer.
  auto stub = gitaly::RefService::NewStub(Node().Channel());
  for (const char* name : {"main", "refs/heads/main"}) {
    gitaly::FindBranchRequest req;
    *req.mutable_repository() = Repo(rel);
    req.set_name(name);
    gitaly::FindBranchResponse resp;
    assert_true(stub->FindBranch(Ctx().get(), req, &resp).ok());
    assert_true(resp.has_branch());
    assert_string_equal(resp.branch().name().c_str(), "main");
    assert_string_equal(resp.branch().target_commit().id().c_str(), main_tip.c_str());
    assert_string_equal(resp.branch().target_commit().subject().c_str(), "main commit 1");
    assert_int_equal(resp.branch().target_commit().parent_ids_size(), 1);
    assert_string_equal(resp.branch().target_commit().author().email().c_str(), "test@example.com");
    assert_int_equal(resp.branch().target_commit().author().date().seconds(), 1700000000);
  }
  gitaly::FindBranchRequest missing;
  *missing.mutable_repository() = Repo(rel);
  missing.set_name("nope");
  gitaly::FindBranchResponse missing_resp;
  assert_true(stub->FindBranch(Ctx().get(), missing, &missing_resp).ok());
  assert_false(missing_resp.has_branch());

  // DeleteRefs: named refs, then all but a prefix, and the exclusive rule.
  gitaly::DeleteRefsRequest del;
  *del.mutable_repository() = Repo(rel);
  del.add_refs("refs/heads/b0");
  del.add_refs("refs/heads/b1");
  gitaly::DeleteRefsResponse del_resp;
  assert_true(stub->DeleteRefs(Ctx().get(), del, &del_resp).ok());
  assert_string_equal(del_resp.git_error().c_str(), "");
  assert_false(RefExists(rel, "refs/heads/b0"));
  assert_true(RefExists(rel, "refs/heads/b2"));
  gitaly::DeleteRefsRequest except;
  *except.mutable_repository() = Repo(rel);
  except.add_except_with_prefix("refs/heads/main");
  except.add_except_with_prefix("refs/heads/b7");
  assert_true(stub->DeleteRefs(Ctx().get(), except, &del_resp).ok());
  assert_string_equal(Git({"--git-dir=" + path, "for-each-ref", "--format=%(refname)"}).c_str(),
                      "refs/heads/b7\nrefs/heads/main\n");
  except.add_refs("refs/heads/main");
  assert_int_equal(stub->DeleteRefs(Ctx().get(), except, &del_resp).error_code(),
                   grpc::StatusCode::INVALID_ARGUMENT);
}

void ConcurrentWrites(void**) {
  // Sixteen clients write refs of one repository at once, while checksums
  // are read: every write lands, git's locks keep the refs consistent.
  const std::string rel = "concurrent.git";
  std::string path = CreateRepo(rel);
  std::string tip = PushCommits(path, Node().root() + "/work-concurrent", "main", 1, false);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        std::string ref = "refs/heads/t" + std::to_string(t) + "-" + std::to_string(i);
        if (!WriteRef(rel, ref, tip).ok()) ++failures;
        auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
        gitaly::CalculateChecksumRequest req;
        *req.mutable_repository() = Repo(rel);
        gitaly::CalculateChecksumResponse resp;
        if (!stub->CalculateChecksum(Ctx().get(), req, &resp).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  assert_int_equal(failures.load(), 0);
  std::string refs = Git({"--git-dir=" + path, "for-each-ref", "--format=%(refname)", "refs/heads/"});
  assert_int_equal(std::count(refs.begin(), refs.end(), '\n'), 16 * 5 + 1);
  Git({"--git-dir=" + path, "fsck", "--no-progress"});
}
