#include <stdio.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "fs_util.h"
#include "repository_service.h"
#include "transactional_git.h"

namespace praefect::storagenode {

// Gitaly's snapshot: a tar of HEAD, packed-refs, refs/, branches/ and
// objects/ (no config, no hooks), streamed in 128 KiB messages.
grpc::Status RepositoryServiceImpl::GetSnapshot(grpc::ServerContext* ctx, const gitaly::GetSnapshotRequest* req,
                                                grpc::ServerWriter<gitaly::GetSnapshotResponse>* writer) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  std::vector<std::string> argv = {"tar", "-c", "-f", "-", "-C", *path, "--"};
  for (const char* entry : {"HEAD", "packed-refs", "refs", "branches", "objects"}) {
    if (PathExists(*path + "/" + entry)) argv.push_back(entry);
  }
  auto child = ChildProcess::Spawn(argv, GitEnvironment(deps_->git), "");
  if (!child.ok()) return ToGrpc(child.status());
  std::string buf(128 * 1024, '\0');
  gitaly::GetSnapshotResponse msg;
  for (;;) {
    size_t n = (*child)->ReadFull(buf.data(), buf.size());
    if (n == 0) break;
    msg.set_data(buf.data(), n);
    if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "GetSnapshot: client went away");
  }
  GitResult result = (*child)->Wait();
  // tar exits 1 when a file changed while it was read (a concurrent write);
  // the archive is still complete for what it holds.
  if (result.exit_code > 1) return ToGrpc(Internal("GetSnapshot: tar failed: " + result.err));
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode

namespace praefect::storagenode {
namespace {


}  // namespace

// Gitaly's CreateRepositoryFromSnapshot: GET http_url (with http_auth as the
// Authorization header, no redirects followed), which must answer 200 with
// a GetSnapshot tar; the tar is unpacked in the scratch directory, made a
// repository with `git init --bare` (the snapshot has no config), and
// renamed into place, so a failure at any step leaves no repository.
grpc::Status RepositoryServiceImpl::CreateRepositoryFromSnapshot(grpc::ServerContext* ctx,
                                                                 const gitaly::CreateRepositoryFromSnapshotRequest* req,
                                                                 gitaly::CreateRepositoryFromSnapshotResponse*) {
  auto path = RepoPathFor(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  if (PathExists(*path))
    return ToGrpc(Status(StatusCode::kAlreadyExists, "CreateRepositoryFromSnapshot: destination directory exists"));
  const std::string& url = req->http_url();
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    return ToGrpc(InvalidArgument("CreateRepositoryFromSnapshot: http_url must be an http:// or https:// URL, got \"" +
                                  url + "\""));
  auto storage = deps_->locator->StoragePath(req->repository().storage_name());
  if (!storage.ok()) return ToGrpc(storage.status());
  auto tx = BeginTransaction(deps_->transactions, *ctx);
  if (!tx.ok()) return ToGrpc(tx.status());
  auto tmp = MakeTempDir(*storage, "snapshot");
  if (!tmp.ok()) return ToGrpc(tmp.status());
  const std::string archive = *tmp + "/snapshot.tar";
  const std::string staged = *tmp + "/repo.git";
  auto fail = [&](Status st) {
    (void)RemoveTree(*tmp);
    return ToGrpc(st);
  };
  // The URL and the header go to curl through its config on stdin, never
  // on the command line where other users could read them.
  auto quote = [](const std::string& v) {
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') q.push_back('\\');
      if (c == '\n' || c == '\r') continue;
      q.push_back(c);
    }
    return q + "\"";
  };
  std::string curl_config = "url = " + quote(url) + "\n";
  if (!req->http_auth().empty()) curl_config += "header = " + quote("Authorization: " + req->http_auth()) + "\n";
  auto fetched = RunProgram(deps_->git,
                            {"curl", "--silent", "--show-error", "--fail", "--max-time", "3600", "--proto",
                             "=http,https", "--config", "-", "--output", archive},
                            curl_config);
  if (!fetched.ok()) return fail(fetched.status());
  if (fetched->exit_code != 0)
    return fail(Internal("CreateRepositoryFromSnapshot: fetching the snapshot from " + url + ": " +
                         TrimTrailing(fetched->err)));
  if (Status st = MakeDirs(staged); !st.ok()) return fail(st);
  // --no-same-owner/--no-same-permissions: the archive's ownership is not
  // ours to keep; -P is not given, so absolute names and .. are refused.
  auto unpacked = RunProgram(deps_->git, {"tar", "-x", "-f", archive, "-C", staged, "--no-same-owner",
                                          "--no-same-permissions", "--", "HEAD", "packed-refs", "refs", "branches",
                                          "objects"});
  if (!unpacked.ok()) return fail(unpacked.status());
  // tar exits 2 when a listed member is absent (packed-refs, branches are
  // optional); a broken archive also exits 2, which the repository check
  // below catches.
  if (unpacked->exit_code != 0 && unpacked->exit_code != 2)
    return fail(Internal("CreateRepositoryFromSnapshot: unpacking: " + TrimTrailing(unpacked->err)));
  if (!IsGitDirectory(staged))
    return fail(InvalidArgument("CreateRepositoryFromSnapshot: the snapshot at " + url +
                                " is not a repository snapshot (no HEAD, objects/ and refs/): " +
                                TrimTrailing(unpacked->err)));
  auto init = RunProgram(deps_->git, {deps_->git.git_binary, "init", "--bare", "--quiet", staged});
  if (!init.ok()) return fail(init.status());
  if (init->exit_code != 0) return fail(Internal("CreateRepositoryFromSnapshot: git init: " + TrimTrailing(init->err)));
  if (Status st = PublishRepository(*deps_, tx->get(), staged, *path, "CreateRepositoryFromSnapshot",
                                    "CreateRepositoryFromSnapshot: destination directory exists");
      !st.ok())
    return fail(st);
  (void)RemoveTree(*tmp);
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
