#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"

// What content verification (src/reconcile/content_verifier.h) reads and
// writes: the cluster's walk over the repositories, and the marking of a
// replica whose content differs from its primary's. PostgreSQL only.
namespace praefect::datastore {

// A repository to verify: its replicas at the latest generation.
struct ContentCandidate {
  int64_t repository_id = 0;
  std::string virtual_storage;
  std::string relative_path;
  std::string replica_path;
  std::string primary;  // recorded primary, at the latest generation
  int64_t generation = 0;
  std::vector<std::string> up_to_date;  // storages at `generation`, the primary among them, sorted
};

// One claim of the walk.
struct ContentBatch {
  std::vector<ContentCandidate> repositories;
  bool ended_pass = false;  // this claim reached the last repository: the walk starts over
  int64_t passes = 0;       // passes completed, this one included
};

class ContentVerificationStore {
 public:
  virtual ~ContentVerificationStore() = default;

  // The next `count` repositories of the walk (by id, from where the last
  // batch of any praefect ended; after the last one the walk starts over
  // and a pass is counted), skipping those with an active replication job
  // (being repaired or replicated: their replicas are about to change) or
  // whose primary is not at the latest generation.
  [[nodiscard]] virtual StatusOr<ContentBatch> ClaimContentBatch(int count) = 0;

  // `storage`'s replica holds other content than the primary's at the same
  // generation: in one statement, if the repository is still at
  // `generation` and `primary` still holds it (no write was recorded
  // meanwhile), the replica's generation is lowered below it (outdated:
  // reads and elections avoid it at once) and an update job from `primary`
  // is queued. false when a write intervened (nothing changed).
  [[nodiscard]] virtual StatusOr<bool> MarkContentMismatch(int64_t repository_id, std::string_view storage,
                                                           int64_t generation, std::string_view primary,
                                                           std::string_view correlation_id) = 0;
};

}  // namespace praefect::datastore
