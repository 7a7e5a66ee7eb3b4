#pragma once

// Shared by the transaction tests (integration_tx_*_test.cc): the node under
// test, praefect's side of its backchannel, and helpers.
#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "fake_praefect.h"
#include "node_harness.h"
#include "shared.pb.h"
#include "transaction_info.h"

namespace praefect::storagenode::testing {

// The node every test talks to, and the fake praefect connected to it over
// a backchannel (both started by the group setup).
NodeProcess& TxNode();
FakePraefect& Praefect();

inline gitaly::Repository TxRepo(const std::string& rel) {
  gitaly::Repository r;
  r.set_storage_name("default");
  r.set_relative_path(rel);
  return r;
}

// The transaction praefect would attach for this node.
inline TransactionInfo Tx(uint64_t id, bool primary = true) { return TransactionInfo{id, "default", primary}; }

// Creates `rel` through the node's plain connection (no transaction) and
// pushes `commits` commits on main into it from a scratch clone; returns
// the bare repository's path.
std::string CreateTxRepo(const std::string& rel, int commits);

std::string Sha1Of(const std::string& data);
std::string ZeroHash();
std::string Hex(const std::string& raw);

struct WantVote {
  gitaly::VoteTransactionRequest::Phase phase;
  std::string hash;  // 20 raw bytes
};
// The votes praefect received for transaction `id`, in order.
void ExpectVotes(uint64_t id, const std::vector<WantVote>& want, const std::string& what);
void ExpectStatus(const grpc::Status& st, grpc::StatusCode code, const std::string& needle, const std::string& what);
// `git rev-parse --verify -q <ref>` in `bare`, "" when the ref is missing.
std::string RefAt(const std::string& bare, const std::string& ref);

}  // namespace praefect::storagenode::testing

// integration_tx_push_test.cc
void HttpPushVotes(void**);
void HttpPushAbortedOnPrepared(void**);
void SshPushVotes(void**);
void PushWithoutTransactionDoesNotVote(void**);
void PrimaryPreReceiveRejectionStops(void**);
void PrimaryUpdateHookRejectionStops(void**);
void SecondarySkipsPreReceive(void**);
void SecondaryStoppedBySynchronization(void**);
void LargeTransfersOverBackchannel(void**);
void StaleSecondaryVotesWhatItDid(void**);
void PushLatency(void**);
// integration_tx_refs_test.cc
void WriteRefVotes(void**);
void DeleteRefsVotes(void**);
void CreateRepositoryVotes(void**);
void TransactionOnPlainConnectionRefused(void**);
void VoteRoundTrip(void**);
