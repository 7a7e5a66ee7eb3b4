#pragma once

#include <chrono>
#include <functional>
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

// Dataloss's answer, in messages of about `chunk_bytes` each, to `emit`
// as each fills: Add each repository, then Finish (which emits at least one
// message, empty when nothing was added). Both return false once `emit`
// did: the receiver is gone.
class DatalossChunker {
 public:
  DatalossChunker(size_t chunk_bytes, std::function<bool(std::string)> emit)
      : chunk_bytes_(chunk_bytes), emit_(std::move(emit)) {}
  bool Add(const datastore::RepositoryStatus& repo);
  bool Finish();

 private:
  size_t chunk_bytes_;
  std::function<bool(std::string)> emit_;
  gitaly::DatalossResponse chunk_;
  size_t bytes_ = 0;  // about chunk_.ByteSizeLong()
  bool emitted_ = false;
};

// Dataloss as a stream: each message to `emit` as it is made (the pages
// of the datastore are read while the client takes the earlier ones).
// Stops, with CANCELLED, when `emit` returns false. Blocks: call it off the
// data plane's loops.
Status StreamDataloss(const PraefectInfoDeps& deps, std::string_view request,
                      const std::function<bool(std::string)>& emit);

}  // namespace praefect::services
