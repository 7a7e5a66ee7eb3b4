// kill -9 of the node while it creates repositories and writes refs leaves
// no torn repository: every repository at its final path is complete and
// fsck-clean (creation is a rename of a fully initialised repository).
#include <grpcpp/grpcpp.h>
#include <dirent.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "integration_test.h"
#include "repository-service.grpc.pb.h"
#include "request_context.h"
#include "scratch_repo.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file

void CrashLeavesNoTornRepository(void**) {
  NodeProcess node;
  assert_true(node.Start());
  auto channel = node.Channel();
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> created{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      auto stub = gitaly::RepositoryService::NewStub(channel);
      for (int i = 0; !stop; ++i) {
        gitaly::CreateRepositoryRequest req;
        *req.mutable_repository() = Repo("crash/t" + std::to_string(t) + "-" + std::to_string(i) + ".git");
        gitaly::CreateRepositoryResponse resp;
        if (!stub->CreateRepository(Ctx("", std::chrono::seconds(10)).get(), req, &resp).ok()) return;  // node gone
        std::lock_guard<std::mutex> lock(mu);
        ++created;
        cv.notify_all();
      }
    });
  }
  // Crash once a few repositories exist (bounded wait on a condition).
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return created >= 20; });
  }
  node.Crash();
  stop = true;
  for (auto& c : clients) c.join();
  assert_true(created >= 20);

  std::string dir = node.storage_path() + "/crash";
  DIR* d = opendir(dir.c_str());
  assert_non_null(d);
  int checked = 0;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    expect_that(praefect::storagenode::IsGitDirectory(path), path + " to be a complete repository");
    Git({"--git-dir=" + path, "fsck", "--no-progress"});
    ++checked;
  }
  closedir(d);
  expect_that(checked >= created, "every acknowledged repository on disk");
}
