// The node in praefect's reference transactions (reference/transactions.md
// §3-§7), end to end: the real binary, a fake praefect that dials it with
// the backchannel handshake and answers its votes, real git.
#include <openssl/evp.h>

#include <cstdio>

#include "integration_tx_test.h"
#include "repository-service.grpc.pb.h"
#include "scratch_repo.h"
#include "test_support.h"

namespace praefect::storagenode::testing {

NodeProcess& TxNode() {
  static NodeProcess node;
  return node;
}

FakePraefect& Praefect() {
  static FakePraefect praefect;
  return praefect;
}

std::string CreateTxRepo(const std::string& rel, int commits) {
  auto stub = gitaly::RepositoryService::NewStub(TxNode().Channel());
  gitaly::CreateRepositoryRequest req;
  *req.mutable_repository() = TxRepo(rel);
  gitaly::CreateRepositoryResponse resp;
  grpc::Status st = stub->CreateRepository(Ctx().get(), req, &resp);
  expect_that(st.ok(), "CreateRepository " + rel + ": " + st.error_message());
  std::string bare = TxNode().storage_path() + "/" + rel;
  if (commits > 0) {
    std::string work = TxNode().root() + "/work-" + std::to_string(std::hash<std::string>()(rel));
    PushCommits(bare, work, "main", commits, false);
  }
  return bare;
}

std::string Sha1Of(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha1(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), len);
}

std::string ZeroHash() { return std::string(20, '\0'); }

std::string Hex(const std::string& raw) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

namespace {

std::string Describe(gitaly::VoteTransactionRequest::Phase phase, const std::string& hash) {
  return gitaly::VoteTransactionRequest::Phase_Name(phase) + " " + Hex(hash);
}

}  // namespace

void ExpectVotes(uint64_t id, const std::vector<WantVote>& want, const std::string& what) {
  std::vector<RecordedVote> got = Praefect().Votes(id);
  std::string got_text, want_text;
  for (const auto& v : got) got_text += "\n  " + Describe(v.phase, v.hash) + " (node " + v.node + ")";
  for (const auto& v : want) want_text += "\n  " + Describe(v.phase, v.hash);
  bool same = got.size() == want.size();
  for (size_t i = 0; same && i < got.size(); ++i)
    same = got[i].phase == want[i].phase && got[i].hash == want[i].hash && got[i].node == "default";
  expect_that(same, what + ": votes of transaction " + std::to_string(id) + ":" + want_text + "\ngot:" + got_text);
}

void ExpectStatus(const grpc::Status& st, grpc::StatusCode code, const std::string& needle, const std::string& what) {
  expect_that(st.error_code() == code, what + ": code " + std::to_string(code) + ", got " +
                                           std::to_string(st.error_code()) + " \"" + st.error_message() + "\"");
  expect_that(st.error_message().find(needle) != std::string::npos,
              what + ": a message containing \"" + needle + "\", got \"" + st.error_message() + "\"");
}

std::string RefAt(const std::string& bare, const std::string& ref) {
  std::string out = Git({"--git-dir=" + bare, "rev-parse", "--verify", "-q", ref}, "", true);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace praefect::storagenode::testing

using praefect::storagenode::testing::Praefect;
using praefect::storagenode::testing::TxNode;

static int Start(void**) {
  if (!TxNode().Start()) return -1;
  return Praefect().Connect(TxNode().address()) ? 0 : -1;
}

static int Stop(void**) {
  Praefect().Close();
  TxNode().Stop();
  return 0;
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(HttpPushVotes),
      cmocka_unit_test(HttpPushAbortedOnPrepared),
      cmocka_unit_test(SshPushVotes),
      cmocka_unit_test(PushWithoutTransactionDoesNotVote),
      cmocka_unit_test(PrimaryPreReceiveRejectionStops),
      cmocka_unit_test(PrimaryUpdateHookRejectionStops),
      cmocka_unit_test(SecondarySkipsPreReceive),
      cmocka_unit_test(SecondaryStoppedBySynchronization),
      cmocka_unit_test(LargeTransfersOverBackchannel),
      cmocka_unit_test(StaleSecondaryVotesWhatItDid),
      cmocka_unit_test(PushLatency),
      cmocka_unit_test(WriteRefVotes),
      cmocka_unit_test(DeleteRefsVotes),
      cmocka_unit_test(CreateRepositoryVotes),
      cmocka_unit_test(TransactionOnPlainConnectionRefused),
      cmocka_unit_test(VoteRoundTrip),
  };
  return cmocka_run_group_tests(tests, Start, Stop);
}
