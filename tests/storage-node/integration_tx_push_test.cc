// Pushes in a transaction (reference/transactions.md §7): the
// reference-transaction hook's votes on git's update lines, the hooks'
// synchronisation votes, the final zero vote, ABORT and STOP, and the
// repository's own pre-receive hook on the primary only. Also pushes and a
// fetch bigger than the yamux windows, over the backchannel.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "integration_tx_test.h"
#include "scratch_repo.h"
#include "smarthttp.grpc.pb.h"
#include "ssh.grpc.pb.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file
using Phase = gitaly::VoteTransactionRequest;

namespace {



// A push of one new commit on main: the commit is made in a scratch copy
// of `bare`, and the request carries the command and the pack.
struct Push {
  std::string old_tip;
  std::string new_tip;
  std::string lines;  // what git gives the reference-transaction hook
  std::string data;   // the receive-pack request
};

Push MakePush(const std::string& bare, const std::string& name, const std::string& blob) {
  Push push;
  push.old_tip = RefAt(bare, "refs/heads/main");
  std::string scratch = TxNode().root() + "/scratch-" + name + ".git";
  Git({"clone", "--bare", "--quiet", bare, scratch});
  std::string oid = Git({"--git-dir=" + scratch, "hash-object", "-w", "--stdin"}, blob).substr(0, 40);
  std::string tree = Git({"--git-dir=" + scratch, "mktree"}, "100644 blob " + oid + "\tdata.bin\n").substr(0, 40);
  push.new_tip =
      Git({"--git-dir=" + scratch, "commit-tree", "-p", push.old_tip, "-m", name, tree}).substr(0, 40);
  std::string pack =
      Git({"--git-dir=" + scratch, "pack-objects", "--stdout", "--revs"}, push.new_tip + "\n^" + push.old_tip + "\n");
  push.lines = push.old_tip + " " + push.new_tip + " refs/heads/main\n";
  push.data = PktLine(push.old_tip + " " + push.new_tip + " refs/heads/main" + std::string(1, '\0') +
                      "report-status\n") +
              "0000" + pack;
  return push;
}

struct Pushed {
  grpc::Status status;
  std::string out;
};

Pushed HttpPush(const std::shared_ptr<grpc::Channel>& channel, const std::string& rel, const std::string& data,
                const praefect::storagenode::TransactionInfo* tx) {
  auto stub = gitaly::SmartHTTPService::NewStub(channel);
  auto ctx = TxContext(tx);
  auto stream = stub->PostReceivePack(ctx.get());
  gitaly::PostReceivePackRequest first;
  *first.mutable_repository() = TxRepo(rel);
  first.set_gl_id("user-1");
  first.set_gl_repository("project-1");
  first.set_gl_username("alice");
  bool writing = stream->Write(first);
  for (size_t at = 0; writing && at < data.size(); at += 64 * 1024) {
    gitaly::PostReceivePackRequest next;
    next.set_data(data.substr(at, 64 * 1024));
    writing = stream->Write(next);
  }
  stream->WritesDone();
  Pushed pushed;
  gitaly::PostReceivePackResponse resp;
  while (stream->Read(&resp)) pushed.out += resp.data();
  pushed.status = stream->Finish();
  return pushed;
}

Pushed SshPush(const std::string& rel, const std::string& data, const praefect::storagenode::TransactionInfo* tx) {
  auto stub = gitaly::SSHService::NewStub(Praefect().Channel());
  auto ctx = TxContext(tx);
  auto stream = stub->SSHReceivePack(ctx.get());
  gitaly::SSHReceivePackRequest first;
  *first.mutable_repository() = TxRepo(rel);
  first.set_gl_id("user-1");
  bool writing = stream->Write(first);
  gitaly::SSHReceivePackRequest next;
  next.set_stdin(data);
  if (writing) stream->Write(next);
  stream->WritesDone();
  Pushed pushed;
  gitaly::SSHReceivePackResponse resp;
  while (stream->Read(&resp)) pushed.out += resp.stdout() + resp.stderr();
  pushed.status = stream->Finish();
  return pushed;
}

void ExpectOk(const Pushed& pushed, const std::string& what) {
  expect_that(pushed.status.ok(), what + ": an OK push, got " + std::to_string(pushed.status.error_code()) + " \"" +
                                      pushed.status.error_message() + "\"; git said: " + pushed.out);
}

// The votes of a push that updated refs: the hooks' and git's.
std::vector<WantVote> PushVotes(const std::string& lines) {
  return {{Phase::SYNCHRONIZED_PHASE, Sha1Of("synchronize pre-receive hook")},
          {Phase::PREPARED_PHASE, Sha1Of(lines)},
          {Phase::COMMITTED_PHASE, Sha1Of(lines)},
          {Phase::SYNCHRONIZED_PHASE, Sha1Of("synchronize post-receive hook")},
          {Phase::COMMITTED_PHASE, ZeroHash()}};
}

void WriteHook(const std::string& bare, const std::string& body, const std::string& name = "pre-receive") {
  mkdir((bare + "/custom_hooks").c_str(), 0755);
  const std::string path = bare + "/custom_hooks/" + name;
  {
    std::ofstream hook(path);
    hook << "#!/bin/sh\n" << body;
  }
  assert_int_equal(chmod(path.c_str(), 0755), 0);
}

}  // namespace

void HttpPushVotes(void**) {
  std::string bare = CreateTxRepo("tx/http.git", 1);
  Push push = MakePush(bare, "http", "http push\n");
  auto tx = Tx(101);
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/http.git", push.data, &tx);
  ExpectOk(pushed, "PostReceivePack in a transaction");
  expect_that(pushed.out.find("ok refs/heads/main") != std::string::npos, "ok refs/heads/main in: " + pushed.out);
  ExpectVotes(101, PushVotes(push.lines), "PostReceivePack");
  expect_that(RefAt(bare, "refs/heads/main") == push.new_tip, "main moved to " + push.new_tip);
}

void HttpPushAbortedOnPrepared(void**) {
  Praefect().SetPolicy([](const RecordedVote& vote, size_t) {
    return vote.id == 102 && vote.phase == Phase::PREPARED_PHASE ? gitaly::VoteTransactionResponse::ABORT
                                                                 : gitaly::VoteTransactionResponse::COMMIT;
  });
  std::string bare = CreateTxRepo("tx/aborted.git", 1);
  Push push = MakePush(bare, "aborted", "aborted push\n");
  auto tx = Tx(102);
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/aborted.git", push.data, &tx);
  ExpectStatus(pushed.status, grpc::StatusCode::ABORTED, "transaction was aborted", "a push whose vote was aborted");
  expect_that(RefAt(bare, "refs/heads/main") == push.old_tip, "main unchanged at " + push.old_tip);
  // git dies when the hook refuses the prepared update ("ref updates
  // aborted by hook"): no post-receive, no final vote.
  ExpectVotes(102,
              {{Phase::SYNCHRONIZED_PHASE, Sha1Of("synchronize pre-receive hook")},
               {Phase::PREPARED_PHASE, Sha1Of(push.lines)}},
              "an aborted push");
}

void SshPushVotes(void**) {
  std::string bare = CreateTxRepo("tx/ssh.git", 1);
  Push push = MakePush(bare, "ssh", "ssh push\n");
  auto tx = Tx(103);
  Pushed pushed = SshPush("tx/ssh.git", push.data, &tx);
  ExpectOk(pushed, "SSHReceivePack in a transaction");
  ExpectVotes(103, PushVotes(push.lines), "SSHReceivePack");
  expect_that(RefAt(bare, "refs/heads/main") == push.new_tip, "main moved to " + push.new_tip);
}

void PushWithoutTransactionDoesNotVote(void**) {
  std::string bare = CreateTxRepo("tx/plain-push.git", 1);
  Push push = MakePush(bare, "plain-push", "no transaction\n");
  const size_t before = Praefect().AllVotes();
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/plain-push.git", push.data, nullptr);
  ExpectOk(pushed, "PostReceivePack without a transaction, over the backchannel");
  expect_that(Praefect().AllVotes() == before, "no vote without a transaction");
  expect_that(RefAt(bare, "refs/heads/main") == push.new_tip, "main moved to " + push.new_tip);
  // The repository's own hooks/ run as before: git's default hooks
  // directory is untouched without a transaction.
  Push again = MakePush(bare, "plain-push-2", "no transaction, hook\n");
  std::string marker = TxNode().root() + "/plain-push-hook.out";
  {
    std::ofstream hook(bare + "/hooks/pre-receive");
    hook << "#!/bin/sh\necho \"$GL_ID\" > " << marker << "\ncat >/dev/null\n";
  }
  assert_int_equal(chmod((bare + "/hooks/pre-receive").c_str(), 0755), 0);
  ExpectOk(HttpPush(TxNode().Channel(), "tx/plain-push.git", again.data, nullptr), "a push on a plain connection");
  std::ifstream seen(marker);
  std::string gl_id;
  std::getline(seen, gl_id);
  expect_that(gl_id == "user-1", "the repository's hooks/pre-receive ran, got \"" + gl_id + "\"");
}

void PrimaryPreReceiveRejectionStops(void**) {
  std::string bare = CreateTxRepo("tx/rejected.git", 1);
  std::string marker = TxNode().root() + "/rejected-hook.out";
  WriteHook(bare, "echo \"$GL_ID $GL_PROTOCOL\" > " + marker + "\necho 'denied by policy' >&2\nexit 1\n");
  Push push = MakePush(bare, "rejected", "rejected push\n");
  auto tx = Tx(105);
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/rejected.git", push.data, &tx);
  // As Gitaly: git reports the refusal to the client, the final vote is
  // answered STOP, and STOP is no error of the call.
  ExpectOk(pushed, "a push the primary's pre-receive hook declined");
  expect_that(pushed.out.find("pre-receive hook declined") != std::string::npos,
              "the refusal reported to the client: " + pushed.out);
  expect_that(Praefect().Stopped(105), "the primary stopped the transaction (StopTransaction)");
  expect_that(RefAt(bare, "refs/heads/main") == push.old_tip, "main unchanged");
  ExpectVotes(105, {{Phase::COMMITTED_PHASE, ZeroHash()}}, "a push declined on the primary");
  std::ifstream seen(marker);
  std::string env;
  std::getline(seen, env);
  expect_that(env == "user-1 http", "the custom hook saw GL_ID and GL_PROTOCOL, got \"" + env + "\"");
}

void PrimaryUpdateHookRejectionStops(void**) {
  std::string bare = CreateTxRepo("tx/update-hook.git", 1);
  std::string marker = TxNode().root() + "/update-hook.out";
  WriteHook(bare, "echo \"$1 $2 $3\" > " + marker + "\nexit 1\n", "update");
  Push push = MakePush(bare, "update-hook", "update hook push\n");
  auto tx = Tx(110);
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/update-hook.git", push.data, &tx);
  ExpectOk(pushed, "a push the primary's update hook declined");
  expect_that(pushed.out.find("ng refs/heads/main hook declined") != std::string::npos,
              "the refusal reported to the client: " + pushed.out);
  expect_that(Praefect().Stopped(110), "the primary stopped the transaction");
  expect_that(RefAt(bare, "refs/heads/main") == push.old_tip, "main unchanged");
  std::ifstream seen(marker);
  std::string args;
  std::getline(seen, args);
  expect_that(args == "refs/heads/main " + push.old_tip + " " + push.new_tip, "the update hook's arguments: " + args);
  ExpectVotes(110,
              {{Phase::SYNCHRONIZED_PHASE, Sha1Of("synchronize pre-receive hook")},
               {Phase::COMMITTED_PHASE, ZeroHash()}},
              "a push declined by the update hook");
}

void SecondarySkipsPreReceive(void**) {
  std::string bare = CreateTxRepo("tx/secondary.git", 1);
  std::string marker = TxNode().root() + "/secondary-hook.out";
  WriteHook(bare, "touch " + marker + "\nexit 1\n");
  Push push = MakePush(bare, "secondary", "secondary push\n");
  auto tx = Tx(106, /*primary=*/false);
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/secondary.git", push.data, &tx);
  ExpectOk(pushed, "a push on a secondary");
  struct stat st;
  expect_that(stat(marker.c_str(), &st) != 0, "the repository's pre-receive hook did not run on a secondary");
  ExpectVotes(106, PushVotes(push.lines), "a push on a secondary");
  expect_that(RefAt(bare, "refs/heads/main") == push.new_tip, "main moved to " + push.new_tip);
}

void SecondaryStoppedBySynchronization(void**) {
  // What a secondary sees when the primary's hook declined: STOP on its
  // synchronisation vote.
  Praefect().SetPolicy([](const RecordedVote& vote, size_t) {
    return vote.id == 107 && vote.phase == Phase::SYNCHRONIZED_PHASE ? gitaly::VoteTransactionResponse::STOP
                                                                     : gitaly::VoteTransactionResponse::COMMIT;
  });
  std::string bare = CreateTxRepo("tx/stopped.git", 1);
  Push push = MakePush(bare, "stopped", "stopped push\n");
  auto tx = Tx(107, /*primary=*/false);
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/stopped.git", push.data, &tx);
  ExpectOk(pushed, "a push stopped on a secondary");
  expect_that(pushed.out.find("pre-receive hook declined") != std::string::npos, "git declined: " + pushed.out);
  expect_that(RefAt(bare, "refs/heads/main") == push.old_tip, "main unchanged");
  ExpectVotes(107,
              {{Phase::SYNCHRONIZED_PHASE, Sha1Of("synchronize pre-receive hook")},
               {Phase::COMMITTED_PHASE, ZeroHash()}},
              "a secondary's stopped push");
}

void LargeTransfersOverBackchannel(void**) {
  // 18 MiB: more than the node's 16 MiB receive window and much more than
  // the fake praefect's 256 KiB one, so both directions wait for windows.
  std::string bare = CreateTxRepo("tx/large.git", 1);
  Push push = MakePush(bare, "large", NoiseBytes(18 << 20, 5));
  auto tx = Tx(108);
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/large.git", push.data, &tx);
  ExpectOk(pushed, "an 18 MiB push over the backchannel");
  expect_that(RefAt(bare, "refs/heads/main") == push.new_tip, "main moved to " + push.new_tip);

  auto stub = gitaly::SmartHTTPService::NewStub(Praefect().Channel());
  auto ctx = TxContext(nullptr);
  auto stream = stub->PostUploadPack(ctx.get());
  gitaly::PostUploadPackRequest first;
  *first.mutable_repository() = TxRepo("tx/large.git");
  stream->Write(first);
  gitaly::PostUploadPackRequest wants;
  wants.set_data(PktLine("want " + push.new_tip + "\n") + "0000" + PktLine("done\n"));
  stream->Write(wants);
  stream->WritesDone();
  std::string out;
  gitaly::PostUploadPackResponse resp;
  while (stream->Read(&resp)) out += resp.data();
  grpc::Status st = stream->Finish();
  expect_that(st.ok(), "an 18 MiB fetch over the backchannel: " + st.error_message());
  expect_that(out.rfind("0008NAK\nPACK", 0) == 0 && out.size() > (18u << 20),
              "a pack of more than 18 MiB, got " + std::to_string(out.size()) + " bytes");
  std::string fetched = TxNode().root() + "/large-fetched.git";
  Git({"init", "--bare", "--quiet", fetched});
  Git({"--git-dir=" + fetched, "index-pack", "--stdin"}, out.substr(8));
  Git({"--git-dir=" + fetched, "fsck", "--no-dangling", push.new_tip});
}

void StaleSecondaryVotesWhatItDid(void**) {
  // A replica whose main was moved behind praefect's back: git refuses the
  // update before its reference-transaction hook, so this node's second
  // vote is the final zero vote where the others vote on the update, and
  // praefect outvotes it.
  std::string bare = CreateTxRepo("tx/stale.git", 2);
  Push push = MakePush(bare, "stale", "stale push\n");
  Git({"--git-dir=" + bare, "update-ref", "refs/heads/main", push.old_tip + "~1"});
  auto tx = Tx(109, /*primary=*/false);
  Pushed pushed = HttpPush(Praefect().Channel(), "tx/stale.git", push.data, &tx);
  ExpectOk(pushed, "a push on a stale secondary (the fake praefect commits every vote)");
  expect_that(pushed.out.find("ng refs/heads/main") != std::string::npos, "git refused the update: " + pushed.out);
  ExpectVotes(109,
              {{Phase::SYNCHRONIZED_PHASE, Sha1Of("synchronize pre-receive hook")},
               {Phase::COMMITTED_PHASE, ZeroHash()}},
              "a stale secondary's push");
}

void PushLatency(void**) {
  // Printed, not checked: what a transaction adds to a small push (five
  // votes, four hook runs) when praefect answers at once.
  std::string bare = CreateTxRepo("tx/latency.git", 1);
  constexpr int kPushes = 10;
  double took[2] = {0, 0};
  for (int i = 0; i < 2 * kPushes; ++i) {
    const bool with_tx = i % 2 == 1;
    Push push = MakePush(bare, "latency-" + std::to_string(i), "push " + std::to_string(i) + "\n");
    auto tx = Tx(500 + static_cast<uint64_t>(i));
    auto start = std::chrono::steady_clock::now();
    Pushed pushed = HttpPush(Praefect().Channel(), "tx/latency.git", push.data, with_tx ? &tx : nullptr);
    took[with_tx] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ExpectOk(pushed, "a timed push");
  }
  std::printf("PostReceivePack of one commit: %.2f ms without a transaction, %.2f ms with one (5 votes)\n",
              took[0] / kPushes, took[1] / kPushes);
}
