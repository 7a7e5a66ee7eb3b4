// WriteRef, DeleteRefs and repository creation in a transaction; a
// transaction on a connection without backchannel; and what a vote costs.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "integration_tx_test.h"
#include "ref.grpc.pb.h"
#include "repository-service.grpc.pb.h"
#include "scratch_repo.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file
using Phase = gitaly::VoteTransactionRequest;
using praefect::storagenode::TransactionInfo;

namespace {

const std::string kZeroOid(40, '0');

grpc::Status WriteRef(const std::shared_ptr<grpc::Channel>& channel, const std::string& rel, const std::string& ref,
                      const std::string& revision, const TransactionInfo* tx) {
  auto stub = gitaly::RepositoryService::NewStub(channel);
  gitaly::WriteRefRequest req;
  *req.mutable_repository() = TxRepo(rel);
  req.set_ref(ref);
  req.set_revision(revision);
  gitaly::WriteRefResponse resp;
  return stub->WriteRef(TxContext(tx).get(), req, &resp);
}

grpc::Status CreateRepository(const std::shared_ptr<grpc::Channel>& channel, const std::string& rel,
                              const TransactionInfo* tx) {
  auto stub = gitaly::RepositoryService::NewStub(channel);
  gitaly::CreateRepositoryRequest req;
  *req.mutable_repository() = TxRepo(rel);
  gitaly::CreateRepositoryResponse resp;
  return stub->CreateRepository(TxContext(tx).get(), req, &resp);
}

bool Exists(const std::string& rel) {
  struct stat st;
  return stat((TxNode().storage_path() + "/" + rel).c_str(), &st) == 0;
}

void ExpectOk(const grpc::Status& st, const std::string& what) {
  expect_that(st.ok(), what + ": OK, got " + std::to_string(st.error_code()) + " \"" + st.error_message() + "\"");
}

VoteState AbortIn(const RecordedVote& vote, uint64_t id, Phase::Phase phase) {
  return vote.id == id && vote.phase == phase ? gitaly::VoteTransactionResponse::ABORT
                                              : gitaly::VoteTransactionResponse::COMMIT;
}

}  // namespace

void WriteRefVotes(void**) {
  std::string bare = CreateTxRepo("tx/writeref.git", 1);
  const std::string tip = RefAt(bare, "refs/heads/main");
  auto tx = Tx(201);
  ExpectOk(WriteRef(Praefect().Channel(), "tx/writeref.git", "refs/heads/feature", tip, &tx), "WriteRef");
  const std::string lines = kZeroOid + " " + tip + " refs/heads/feature\n";
  ExpectVotes(201, {{Phase::PREPARED_PHASE, Sha1Of(lines)}, {Phase::COMMITTED_PHASE, Sha1Of(lines)}}, "WriteRef");
  expect_that(RefAt(bare, "refs/heads/feature") == tip, "refs/heads/feature written");

  Praefect().SetPolicy([](const RecordedVote& vote, size_t) { return AbortIn(vote, 202, Phase::PREPARED_PHASE); });
  auto aborted = Tx(202);
  ExpectStatus(WriteRef(Praefect().Channel(), "tx/writeref.git", "refs/heads/other", tip, &aborted),
               grpc::StatusCode::ABORTED, "transaction was aborted", "WriteRef whose vote was aborted");
  expect_that(RefAt(bare, "refs/heads/other").empty(), "refs/heads/other not written");

  // HEAD (git symbolic-ref has no reference-transaction hook): the node
  // votes on the new content itself.
  auto head = Tx(203);
  ExpectOk(WriteRef(Praefect().Channel(), "tx/writeref.git", "HEAD", "refs/heads/feature", &head), "WriteRef HEAD");
  const std::string content = "ref: refs/heads/feature\n";
  ExpectVotes(203, {{Phase::PREPARED_PHASE, Sha1Of(content)}, {Phase::COMMITTED_PHASE, Sha1Of(content)}},
              "WriteRef HEAD");
  std::string target = Git({"--git-dir=" + bare, "symbolic-ref", "HEAD"});
  expect_that(target == "refs/heads/feature\n", "HEAD points at refs/heads/feature, got " + target);
}

void DeleteRefsVotes(void**) {
  std::string bare = CreateTxRepo("tx/deleterefs.git", 1);
  const std::string tip = RefAt(bare, "refs/heads/main");
  Git({"--git-dir=" + bare, "update-ref", "refs/heads/doomed", tip});
  auto stub = gitaly::RefService::NewStub(Praefect().Channel());
  gitaly::DeleteRefsRequest req;
  *req.mutable_repository() = TxRepo("tx/deleterefs.git");
  req.add_refs("refs/heads/doomed");
  gitaly::DeleteRefsResponse resp;
  auto tx = Tx(211);
  ExpectOk(stub->DeleteRefs(TxContext(&tx).get(), req, &resp), "DeleteRefs");
  expect_that(resp.git_error().empty(), "no git error: " + resp.git_error());
  // Force deletions: the call votes on the names it deletes, as Gitaly.
  const std::string names = "refs/heads/doomed\n";
  ExpectVotes(211, {{Phase::PREPARED_PHASE, Sha1Of(names)}, {Phase::COMMITTED_PHASE, Sha1Of(names)}}, "DeleteRefs");
  expect_that(RefAt(bare, "refs/heads/doomed").empty(), "refs/heads/doomed deleted");

  Git({"--git-dir=" + bare, "update-ref", "refs/heads/kept", tip});
  Praefect().SetPolicy([](const RecordedVote& vote, size_t) { return AbortIn(vote, 212, Phase::PREPARED_PHASE); });
  req.clear_refs();
  req.add_refs("refs/heads/kept");
  auto aborted = Tx(212);
  ExpectStatus(stub->DeleteRefs(TxContext(&aborted).get(), req, &resp), grpc::StatusCode::ABORTED,
               "transaction was aborted", "DeleteRefs whose vote was aborted");
  expect_that(RefAt(bare, "refs/heads/kept") == tip, "refs/heads/kept not deleted");
}

void CreateRepositoryVotes(void**) {
  auto tx = Tx(221);
  ExpectOk(CreateRepository(Praefect().Channel(), "tx/created.git", &tx), "CreateRepository");
  const std::string bare = TxNode().storage_path() + "/tx/created.git";
  const std::string data = "HEAD " + Git({"--git-dir=" + bare, "symbolic-ref", "HEAD"}) +
                           Git({"--git-dir=" + bare, "for-each-ref", "--format=%(objectname) %(refname)"});
  ExpectVotes(221, {{Phase::PREPARED_PHASE, Sha1Of(data)}, {Phase::COMMITTED_PHASE, Sha1Of(data)}},
              "CreateRepository");

  Praefect().SetPolicy([](const RecordedVote& vote, size_t) {
    if (vote.id == 222) return AbortIn(vote, 222, Phase::PREPARED_PHASE);
    return AbortIn(vote, 223, Phase::COMMITTED_PHASE);
  });
  auto on_prepared = Tx(222);
  ExpectStatus(CreateRepository(Praefect().Channel(), "tx/not-prepared.git", &on_prepared),
               grpc::StatusCode::ABORTED, "transaction was aborted", "CreateRepository aborted when prepared");
  expect_that(!Exists("tx/not-prepared.git"), "no repository after an aborted PREPARED vote");
  auto on_committed = Tx(223);
  ExpectStatus(CreateRepository(Praefect().Channel(), "tx/not-committed.git", &on_committed),
               grpc::StatusCode::ABORTED, "transaction was aborted", "CreateRepository aborted when committed");
  expect_that(!Exists("tx/not-committed.git"), "no repository after an aborted COMMITTED vote");
  expect_that(Praefect().Votes(223).size() == 2, "two votes before the abort of the committed phase");

  // From a bundle: the vote is on what the bundle brought.
  std::string source = CreateTxRepo("tx/bundle-source.git", 2);
  std::string bundle = TxNode().root() + "/tx-source.bundle";
  Git({"--git-dir=" + source, "bundle", "create", bundle, "--all"});
  auto stub = gitaly::RepositoryService::NewStub(Praefect().Channel());
  auto from_bundle = Tx(224);
  auto ctx = TxContext(&from_bundle);
  gitaly::CreateRepositoryFromBundleResponse resp;
  auto writer = stub->CreateRepositoryFromBundle(ctx.get(), &resp);
  gitaly::CreateRepositoryFromBundleRequest req;
  *req.mutable_repository() = TxRepo("tx/from-bundle.git");
  std::ifstream in(bundle, std::ios::binary);
  req.set_data(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  writer->Write(req);
  writer->WritesDone();
  ExpectOk(writer->Finish(), "CreateRepositoryFromBundle");
  const std::string created = TxNode().storage_path() + "/tx/from-bundle.git";
  const std::string bundled = "HEAD " + Git({"--git-dir=" + created, "symbolic-ref", "HEAD"}) +
                              Git({"--git-dir=" + created, "for-each-ref", "--format=%(objectname) %(refname)"});
  expect_that(bundled.find("refs/heads/main") != std::string::npos, "the bundle's refs arrived: " + bundled);
  ExpectVotes(224, {{Phase::PREPARED_PHASE, Sha1Of(bundled)}, {Phase::COMMITTED_PHASE, Sha1Of(bundled)}},
              "CreateRepositoryFromBundle");
}

void TransactionOnPlainConnectionRefused(void**) {
  std::string bare = CreateTxRepo("tx/plain.git", 1);
  const std::string tip = RefAt(bare, "refs/heads/main");
  auto tx = Tx(231);
  ExpectStatus(WriteRef(TxNode().Channel(), "tx/plain.git", "refs/heads/feature", tip, &tx),
               grpc::StatusCode::INTERNAL, "get backchannel: no backchannel for peer", "WriteRef on a plain connection");
  expect_that(RefAt(bare, "refs/heads/feature").empty(), "nothing written");
  ExpectStatus(CreateRepository(TxNode().Channel(), "tx/plain-created.git", &tx), grpc::StatusCode::INTERNAL,
               "no backchannel for peer", "CreateRepository on a plain connection");
  expect_that(!Exists("tx/plain-created.git"), "no repository created");
  expect_that(Praefect().Votes(231).empty(), "no vote reached praefect");
  // Metadata that is not a transaction is refused as such.
  auto stub = gitaly::RepositoryService::NewStub(Praefect().Channel());
  gitaly::WriteRefRequest req;
  *req.mutable_repository() = TxRepo("tx/plain.git");
  req.set_ref("refs/heads/x");
  req.set_revision(tip);
  gitaly::WriteRefResponse resp;
  grpc::ClientContext ctx;
  ctx.AddMetadata("gitaly-reference-transaction", "bm90IGpzb24=");  // "not json"
  ExpectStatus(stub->WriteRef(&ctx, req, &resp), grpc::StatusCode::INVALID_ARGUMENT, "gitaly-reference-transaction",
               "unparsable transaction metadata");
}

void VoteRoundTrip(void**) {
  // WriteRef with and without a transaction over the same backchannel; the
  // difference is two votes (prepared, committed) through the hook program,
  // the node's hook socket, the backchannel and the fake praefect.
  std::string bare = CreateTxRepo("tx/timing.git", 1);
  const std::string tip = RefAt(bare, "refs/heads/main");
  constexpr int kRounds = 20;
  auto time = [&](bool with_tx, uint64_t first_id) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) {
      auto tx = Tx(first_id + static_cast<uint64_t>(i));
      grpc::Status st = WriteRef(Praefect().Channel(), "tx/timing.git", "refs/heads/t" + std::to_string(first_id + i),
                                 tip, with_tx ? &tx : nullptr);
      ExpectOk(st, "WriteRef for timing");
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / kRounds;
  };
  double plain = time(false, 300);
  double voted = time(true, 400);
  std::printf("WriteRef: %.2f ms without a transaction, %.2f ms with one (2 votes): %.2f ms per vote "
              "(hook start, hook socket, backchannel, RefTransaction)\n",
              plain, voted, (voted - plain) / 2);
  for (int i = 0; i < kRounds; ++i)
    expect_that(Praefect().Votes(400 + static_cast<uint64_t>(i)).size() == 2, "two votes per transactional WriteRef");
  // Every vote of the group went over the one stream the node opened back.
  expect_that(Praefect().node_streams() == 1,
              "one vote channel per backchannel, got " + std::to_string(Praefect().node_streams()) + " streams");
}
