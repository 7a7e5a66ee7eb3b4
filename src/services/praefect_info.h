#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"
#include "datastore/datastore.h"
#include "datastore/operator_store.h"
#include "nodes/node_set.h"
#include "praefect/praefect.pb.h"

// gitaly.PraefectInfoService (proto/praefect/praefect.proto) as praefect
// answers it: the operators' calls behind praefect dataloss,
// accept-dataloss, metadata, verify and set-replication-factor, and
// RepositoryReplicas (checksums of every replica). Messages and status
// codes are Praefect v16's (../shared/reference/operator-commands.md §14).
namespace praefect::services {

// What the answers read. The pointees must outlive every call.
struct PraefectInfoDeps {
  const nodes::NodeSet* nodes = nullptr;
  datastore::Datastore* store = nullptr;
  // Null without a database: Dataloss, SetAuthoritativeStorage,
  // MarkUnverified and GetRepositoryMetadata then fail FAILED_PRECONDITION
  // saying that they need PostgreSQL (as in Praefect).
  datastore::OperatorStore* operator_store = nullptr;
  // The health quorum window ([failover]), for "healthy" and "valid primary".
  std::chrono::milliseconds health_window{10000};
  // How long RepositoryReplicas waits for each node's checksum.
  std::chrono::milliseconds node_timeout{10000};
};

// Whether `method` ("/gitaly.PraefectInfoService/Dataloss") is one of them.
bool IsPraefectInfoMethod(std::string_view method);

// The serialized response messages to the request bytes `request` of
// `method`: one for the unary calls, one per chunk of about 1 MiB for
// Dataloss (at least one, empty when nothing is lost). Blocks on the
// datastore and the nodes: call it off the data plane's loops.
StatusOr<std::vector<std::string>> AnswerPraefectInfo(const PraefectInfoDeps& deps, std::string_view method,
                                                      std::string_view request);

// The storages of the configuration, for the OperatorStore.
datastore::ConfiguredStorages ConfiguredStoragesOf(const nodes::NodeSet& nodes);

// Dataloss's answer, in messages of about `chunk_bytes` each: Add each
// repository, then Finish (at least one message, empty when nothing was
// added).
class DatalossChunker {
 public:
  explicit DatalossChunker(size_t chunk_bytes) : chunk_bytes_(chunk_bytes) {}
  void Add(const datastore::RepositoryStatus& repo);
  std::vector<std::string> Finish();

 private:
  size_t chunk_bytes_;
  gitaly::DatalossResponse chunk_;
  size_t bytes_ = 0;  // about chunk_.ByteSizeLong()
  std::vector<std::string> messages_;
};

}  // namespace praefect::services
