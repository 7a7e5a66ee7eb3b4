// SmartHTTPService as a client sees it: ref advertisements compared with
// `git for-each-ref`, a stateless fetch whose pack `git index-pack` accepts,
// a push whose ref update `git rev-parse` sees, and the refusals.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include "auth/token.h"
#include "integration_test.h"
#include "scratch_repo.h"
#include "smarthttp.grpc.pb.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file

namespace {

const std::string kZeroOid(40, '0');



// Adds a commit holding a blob of `blob` on top of `parent` to the object
// database of `git_dir` (no ref moves); returns its oid.
std::string CommitWithBlob(const std::string& git_dir, const std::string& parent, const std::string& blob) {
  std::string oid = Git({"--git-dir=" + git_dir, "hash-object", "-w", "--stdin"}, blob).substr(0, 40);
  std::string tree = Git({"--git-dir=" + git_dir, "mktree"}, "100644 blob " + oid + "\tnoise.bin\n").substr(0, 40);
  return Git({"--git-dir=" + git_dir, "commit-tree", "-p", parent, "-m", "noise", tree}).substr(0, 40);
}

struct Collected {
  grpc::Status status;
  std::vector<std::string> messages;
  std::string Joined() const {
    std::string all;
    for (const auto& m : messages) all += m;
    return all;
  }
};

enum class Service { kUploadPack, kReceivePack };

Collected InfoRefs(const std::shared_ptr<grpc::Channel>& channel, Service service,
                   const gitaly::InfoRefsRequest& req, const std::string& authorization = "") {
  auto stub = gitaly::SmartHTTPService::NewStub(channel);
  auto ctx = Ctx(authorization);
  auto reader = service == Service::kUploadPack ? stub->InfoRefsUploadPack(ctx.get(), req)
                                                : stub->InfoRefsReceivePack(ctx.get(), req);
  Collected out;
  gitaly::InfoRefsResponse resp;
  while (reader->Read(&resp)) out.messages.push_back(resp.data());
  out.status = reader->Finish();
  return out;
}

gitaly::InfoRefsRequest InfoRefsRequest(const std::string& rel) {
  gitaly::InfoRefsRequest req;
  *req.mutable_repository() = Repo(rel);
  return req;
}

// Writes `first`, then `data` in messages of at most `chunk` bytes, then
// half-closes and collects every response.
template <typename Request, typename Response>
Collected Bidi(grpc::ClientReaderWriter<Request, Response>* stream, const Request& first, const std::string& data,
               size_t chunk) {
  bool writing = stream->Write(first);
  for (size_t at = 0; writing && at < data.size(); at += chunk) {
    Request next;
    next.set_data(data.substr(at, chunk));
    writing = stream->Write(next);
  }
  stream->WritesDone();
  Collected out;
  Response resp;
  while (stream->Read(&resp)) out.messages.push_back(resp.data());
  out.status = stream->Finish();
  return out;
}

Collected PostUploadPack(const std::shared_ptr<grpc::Channel>& channel, const gitaly::PostUploadPackRequest& first,
                         const std::string& data, const std::string& authorization = "") {
  auto stub = gitaly::SmartHTTPService::NewStub(channel);
  auto ctx = Ctx(authorization);
  auto stream = stub->PostUploadPack(ctx.get());
  return Bidi(stream.get(), first, data, 7);  // small messages: git must see them as one stdin
}

Collected PostReceivePack(const std::shared_ptr<grpc::Channel>& channel, const gitaly::PostReceivePackRequest& first,
                          const std::string& data, const std::string& authorization = "") {
  auto stub = gitaly::SmartHTTPService::NewStub(channel);
  auto ctx = Ctx(authorization);
  auto stream = stub->PostReceivePack(ctx.get());
  return Bidi(stream.get(), first, data, 64 * 1024);
}

gitaly::PostUploadPackRequest UploadFirst(const std::string& rel) {
  gitaly::PostUploadPackRequest first;
  *first.mutable_repository() = Repo(rel);
  return first;
}

gitaly::PostReceivePackRequest ReceiveFirst(const std::string& rel) {
  gitaly::PostReceivePackRequest first;
  *first.mutable_repository() = Repo(rel);
  first.set_gl_id("user-42");
  first.set_gl_repository("project-7");
  first.set_gl_username("alice");
  return first;
}

void ExpectCode(const grpc::Status& st, grpc::StatusCode code, const std::string& needle, const std::string& what) {
  expect_that(st.error_code() == code, what + ": code " + std::to_string(code) + ", got " +
                                           std::to_string(st.error_code()) + " " + st.error_message());
  expect_that(st.error_message().find(needle) != std::string::npos,
              what + ": message \"" + st.error_message() + "\" containing \"" + needle + "\"");
}

void ExpectOk(const grpc::Status& st) {
  expect_that(st.ok(), "an OK call, got code " + std::to_string(st.error_code()) + " " + st.error_message());
}

// Every "<oid> <ref>" that git lists must be advertised.
void ExpectAdvertises(const std::string& advertisement, const std::string& bare, const std::string& what) {
  std::string refs = Git({"--git-dir=" + bare, "for-each-ref", "--format=%(objectname) %(refname)"});
  int count = 0;
  for (size_t pos = 0; pos < refs.size();) {
    size_t nl = refs.find('\n', pos);
    std::string line = refs.substr(pos, nl - pos);
    pos = nl + 1;
    expect_that(advertisement.find(line) != std::string::npos, what + ": \"" + line + "\" advertised");
    ++count;
  }
  expect_that(count >= 2, what + ": the test repository has refs");
}

}  // namespace

void SmartHttpInfoRefsAdvertisesRefs(void**) {
  const std::string rel = "smarthttp/info.git";
  std::string bare = CreateRepo(rel);
  PushCommits(bare, Node().root() + "/work-smarthttp-info-main", "main", 2, true);
  PushCommits(bare, Node().root() + "/work-smarthttp-info-dev", "dev", 1, false);
  Git({"--git-dir=" + bare, "symbolic-ref", "HEAD", "refs/heads/main"});
  auto channel = Node().Channel();

  Collected upload = InfoRefs(channel, Service::kUploadPack, InfoRefsRequest(rel));
  ExpectOk(upload.status);
  // Gitaly writes the header and the flush as messages of their own.
  expect_that(upload.messages.size() >= 3, "header, flush and git's output as messages");
  expect_that(upload.messages[0] == "001e# service=git-upload-pack\n", "the upload-pack service line first");
  expect_that(upload.messages[1] == "0000", "a flush after the service line");
  std::string all = upload.Joined();
  ExpectAdvertises(all, bare, "upload-pack");
  std::string main_tip = Git({"--git-dir=" + bare, "rev-parse", "refs/heads/main"}).substr(0, 40);
  expect_that(all.find(main_tip + " HEAD") != std::string::npos, "HEAD advertised first");
  expect_that(all.size() > 4 && all.compare(all.size() - 4, 4, "0000") == 0, "the advertisement ends in a flush");

  Collected receive = InfoRefs(channel, Service::kReceivePack, InfoRefsRequest(rel));
  ExpectOk(receive.status);
  all = receive.Joined();
  expect_that(all.rfind("001f# service=git-receive-pack\n0000", 0) == 0, "the receive-pack service line first");
  expect_that(all.find("report-status") != std::string::npos, "receive-pack capabilities");
  ExpectAdvertises(all, bare, "receive-pack");

  // git_protocol reaches git as GIT_PROTOCOL; the header is written anyway.
  gitaly::InfoRefsRequest v2 = InfoRefsRequest(rel);
  v2.set_git_protocol("version=2");
  Collected v2_out = InfoRefs(channel, Service::kUploadPack, v2);
  ExpectOk(v2_out.status);
  all = v2_out.Joined();
  expect_that(all.rfind("001e# service=git-upload-pack\n0000000eversion 2\n", 0) == 0,
              "a protocol v2 capability advertisement after the header, got: " + all.substr(0, 80));

  // git_config_options become `git -c`.
  gitaly::InfoRefsRequest hidden = InfoRefsRequest(rel);
  hidden.add_git_config_options("uploadpack.hiderefs=refs/heads/dev");
  Collected hidden_out = InfoRefs(channel, Service::kUploadPack, hidden);
  ExpectOk(hidden_out.status);
  expect_that(hidden_out.Joined().find("refs/heads/dev") == std::string::npos, "refs/heads/dev hidden by -c");
  expect_that(hidden_out.Joined().find("refs/heads/main") != std::string::npos, "refs/heads/main still there");
  gitaly::InfoRefsRequest bad_option = InfoRefsRequest(rel);
  bad_option.add_git_config_options("novalue");
  ExpectCode(InfoRefs(channel, Service::kUploadPack, bad_option).status, grpc::StatusCode::INVALID_ARGUMENT,
             "novalue", "a config option without '='");

  Collected missing = InfoRefs(channel, Service::kUploadPack, InfoRefsRequest("smarthttp/missing.git"));
  ExpectCode(missing.status, grpc::StatusCode::NOT_FOUND, "smarthttp/missing.git", "InfoRefsUploadPack, no repo");
  expect_that(missing.messages.empty(), "no header before NOT_FOUND");
  ExpectCode(InfoRefs(channel, Service::kReceivePack, InfoRefsRequest("smarthttp/missing.git")).status,
             grpc::StatusCode::NOT_FOUND, "smarthttp/missing.git", "InfoRefsReceivePack, no repo");
  ExpectCode(InfoRefs(channel, Service::kUploadPack, gitaly::InfoRefsRequest()).status,
             grpc::StatusCode::INVALID_ARGUMENT, "empty Repository", "InfoRefsUploadPack, no repository field");
}

void SmartHttpFetchesPack(void**) {
  const std::string rel = "smarthttp/fetch.git";
  std::string bare = CreateRepo(rel);
  std::string base = PushCommits(bare, Node().root() + "/work-smarthttp-fetch", "main", 3, false);
  // A commit with 1 MiB of noise, so the pack spans several 128 KiB messages.
  std::string tip = CommitWithBlob(bare, base, NoiseBytes(1 << 20, 7));
  Git({"--git-dir=" + bare, "update-ref", "refs/heads/main", tip});
  auto channel = Node().Channel();

  std::string negotiation = PktLine("want " + tip + "\n") + "0000" + PktLine("done\n");
  Collected fetched = PostUploadPack(channel, UploadFirst(rel), negotiation);
  ExpectOk(fetched.status);
  std::string out = fetched.Joined();
  expect_that(out.rfind("0008NAK\nPACK", 0) == 0, "NAK then a pack, got: " + out.substr(0, 16));
  expect_that(fetched.messages.size() >= 8, "a 1 MiB pack in messages of at most 128 KiB, got " +
                                                std::to_string(fetched.messages.size()));
  std::string scratch = Node().root() + "/smarthttp-fetched.git";
  Git({"init", "--bare", "--quiet", scratch});
  Git({"--git-dir=" + scratch, "index-pack", "--stdin"}, out.substr(8));
  std::string count = Git({"--git-dir=" + scratch, "rev-list", "--count", "--objects", tip});
  std::string want = Git({"--git-dir=" + bare, "rev-list", "--count", "--objects", tip});
  expect_that(count == want, "every object of " + tip + " in the fetched pack: " + count + " vs " + want);
  Git({"--git-dir=" + scratch, "fsck", "--no-dangling", tip});

  // A git failure: the oid is advertised nowhere.
  Collected refused = PostUploadPack(channel, UploadFirst(rel),
                                     PktLine("want 1234567890123456789012345678901234567890\n") + "0000" +
                                         PktLine("done\n"));
  ExpectCode(refused.status, grpc::StatusCode::UNAVAILABLE, "not our ref", "a want of an unknown object");

  gitaly::PostUploadPackRequest with_data = UploadFirst(rel);
  with_data.set_data("0000");
  ExpectCode(PostUploadPack(channel, with_data, "").status, grpc::StatusCode::INVALID_ARGUMENT,
             "PostUploadPack: non-empty Data", "data in the first request");
  ExpectCode(PostUploadPack(channel, UploadFirst("smarthttp/missing.git"), negotiation).status,
             grpc::StatusCode::NOT_FOUND, "smarthttp/missing.git", "PostUploadPack, no repo");
}

void SmartHttpPushUpdatesRef(void**) {
  const std::string rel = "smarthttp/push.git";
  std::string bare = CreateRepo(rel);
  std::string work = Node().root() + "/work-smarthttp-push";
  std::string old_tip = PushCommits(bare, work, "main", 2, false);
  // The hook sees who pushes from the GL_* variables.
  std::string hook_out = Node().root() + "/smarthttp-hook.out";
  {
    std::ofstream hook(bare + "/hooks/pre-receive");
    hook << "#!/bin/sh\necho \"$GL_ID $GL_REPOSITORY $GL_USERNAME $GL_PROTOCOL\" > " << hook_out << "\ncat >/dev/null\n";
  }
  assert_int_equal(chmod((bare + "/hooks/pre-receive").c_str(), 0755), 0);

  std::string new_tip = CommitWithBlob(work + "/.git", old_tip, NoiseBytes(300 * 1024, 11));
  std::string pack = Git({"-C", work, "pack-objects", "--stdout", "--revs"}, new_tip + "\n^" + old_tip + "\n");
  expect_that(pack.rfind("PACK", 0) == 0, "git pack-objects made a pack");
  std::string command = kZeroOid + " " + new_tip + " refs/heads/x" + std::string(1, '\0') + "report-status\n";
  std::string data = PktLine(command) + "0000" + pack;

  auto channel = Node().Channel();
  Collected pushed = PostReceivePack(channel, ReceiveFirst(rel), data);
  ExpectOk(pushed.status);
  std::string report = pushed.Joined();
  expect_that(report.find("unpack ok\n") != std::string::npos, "unpack ok in: " + report);
  expect_that(report.find("ok refs/heads/x\n") != std::string::npos, "ok refs/heads/x in: " + report);
  std::string x = Git({"--git-dir=" + bare, "rev-parse", "refs/heads/x"}).substr(0, 40);
  expect_that(x == new_tip, "refs/heads/x at " + new_tip + ", got " + x);
  Git({"--git-dir=" + bare, "fsck", "--no-dangling"});
  std::ifstream hook_in(hook_out);
  std::string seen;
  std::getline(hook_in, seen);
  expect_that(seen == "user-42 project-7 alice http", "GL_* in the hook's environment, got \"" + seen + "\"");

  // A stale old oid: receive-pack reports the refusal, the ref stays.
  std::string stale = PktLine(old_tip + " " + old_tip + " refs/heads/x" + std::string(1, '\0') + "report-status\n");
  std::string empty_pack = Git({"-C", work, "pack-objects", "--stdout", "--revs"}, "");
  Collected rejected = PostReceivePack(channel, ReceiveFirst(rel), stale + "0000" + empty_pack);
  expect_that(rejected.Joined().find("unpack ok\n") != std::string::npos, "unpack ok in: " + rejected.Joined());
  expect_that(rejected.Joined().find("ng refs/heads/x") != std::string::npos,
              "ng refs/heads/x in: " + rejected.Joined());
  x = Git({"--git-dir=" + bare, "rev-parse", "refs/heads/x"}).substr(0, 40);
  expect_that(x == new_tip, "refs/heads/x unchanged by a refused update");

  gitaly::PostReceivePackRequest no_gl_id = ReceiveFirst(rel);
  no_gl_id.clear_gl_id();
  ExpectCode(PostReceivePack(channel, no_gl_id, data).status, grpc::StatusCode::INVALID_ARGUMENT,
             "PostReceivePack: empty GlId", "a push without gl_id");
  ExpectCode(PostReceivePack(channel, ReceiveFirst("smarthttp/missing.git"), data).status,
             grpc::StatusCode::NOT_FOUND, "smarthttp/missing.git", "PostReceivePack, no repo");
}

void SmartHttpRefusesBadToken(void**) {
  // Static: a failed expectation longjmps out of this function past any
  // destructor, and a node left running would outlive the test binary
  // (holding its stderr open); a static one is stopped at exit.
  static NodeProcess secured;
  assert_true(secured.Start("[auth]\ntoken = \"s3cret\"\n"));
  auto channel = secured.Channel();
  Git({"init", "--bare", "--quiet", secured.storage_path() + "/a.git"});
  auto now = std::chrono::system_clock::now();
  const std::string good = praefect::auth::BearerV2("s3cret", now);
  const std::string wrong = praefect::auth::BearerV2("wrong", now);

  ExpectCode(InfoRefs(channel, Service::kUploadPack, InfoRefsRequest("a.git")).status,
             grpc::StatusCode::UNAUTHENTICATED, "", "InfoRefsUploadPack without a token");
  ExpectCode(InfoRefs(channel, Service::kReceivePack, InfoRefsRequest("a.git"), wrong).status,
             grpc::StatusCode::PERMISSION_DENIED, "", "InfoRefsReceivePack with a wrong token");
  std::string negotiation = PktLine("want " + kZeroOid + "\n") + "0000" + PktLine("done\n");
  Collected upload = PostUploadPack(channel, UploadFirst("a.git"), negotiation, wrong);
  ExpectCode(upload.status, grpc::StatusCode::PERMISSION_DENIED, "", "PostUploadPack with a wrong token");
  expect_that(upload.messages.empty(), "nothing from git without a good token");
  ExpectCode(PostReceivePack(channel, ReceiveFirst("a.git"), "0000").status, grpc::StatusCode::UNAUTHENTICATED,
             "", "PostReceivePack without a token");

  Collected ok = InfoRefs(channel, Service::kUploadPack, InfoRefsRequest("a.git"), good);
  ExpectOk(ok.status);
  expect_that(ok.Joined().rfind("001e# service=git-upload-pack\n0000", 0) == 0, "the header with a good token");
  // A push with no commands: receive-pack reads the flush and exits 0.
  Collected pushed = PostReceivePack(channel, ReceiveFirst("a.git"), "0000", good);
  ExpectOk(pushed.status);
  secured.Stop();
}
