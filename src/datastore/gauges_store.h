#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status_or.h"

namespace praefect::datastore {

// What /db_metrics reports, read from the database at scrape time.
struct DatabaseGauges {
  // Repositories of each virtual storage that no replica can serve as
  // primary: none healthy (by the praefects' quorum) at the latest
  // generation. Virtual storages without such repositories are absent.
  struct Unavailable {
    std::string virtual_storage;
    int64_t repositories = 0;
  };
  // Replication jobs by (virtual storage, target, state), as queued.
  struct QueueDepth {
    std::string virtual_storage;
    std::string target_node;
    std::string state;
    int64_t jobs = 0;
  };
  // Replicas pending background verification per (virtual storage,
  // storage): never verified, and verified longer ago than the interval.
  struct VerificationDepth {
    std::string virtual_storage;
    std::string storage;
    int64_t unverified = 0;
    int64_t expired = 0;
  };
  // Repositories whose primary is (virtual storage, storage).
  struct Primaries {
    std::string virtual_storage;
    std::string storage;
    int64_t repositories = 0;
  };
  std::vector<Unavailable> unavailable;
  std::vector<QueueDepth> replication_queue;
  std::vector<VerificationDepth> verification_queue;  // empty unless asked for
  std::vector<Primaries> primaries;
};

struct GaugesQuery {
  std::chrono::milliseconds health_window{10000};  // the quorum window of elections
  // Count replicas pending verification, expired after this; nullopt: skip.
  std::optional<std::chrono::milliseconds> verification_interval;
  std::chrono::milliseconds timeout{10000};  // for all of the statements together
};

class GaugesStore {
 public:
  virtual ~GaugesStore() = default;
  // Reads every gauge; errors (timeout included) say which statement failed.
  [[nodiscard]] virtual StatusOr<DatabaseGauges> QueryGauges(const GaugesQuery& query) = 0;
};

}  // namespace praefect::datastore
