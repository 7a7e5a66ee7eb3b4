#pragma once

#include <iosfwd>
#include <string>

#include "cli/track_request_json.h"
#include "common/status_or.h"
#include "config/config.h"
#include "datastore/postgres_datastore.h"

// What track-repository and track-repositories share: Praefect v16's
// steps of tracking one repository that exists on a node but not in the
// database (../shared/reference/operator-commands.md §6).
namespace praefect::cli {

// "attempting to track repository in praefect database"
inline constexpr const char kTrackErrorPrefix[] = "attempting to track repository in praefect database";

// Whether the authoritative storage holds `replica_path`
// (RepositoryExists directly on the node, client_name track-repository).
// NOT_FOUND 'virtual storage "v" not found' / 'node "s" not found' when the
// configuration has neither. A failed call prints Praefect's `checking if
// repository exists "<s>", "<replica>"` (no newline) on `out` and counts as
// absent.
StatusOr<bool> AuthoritativeRepositoryExists(const config::Config& config, const TrackRequest& request,
                                             std::ostream& out);

// Tracks the repository: checks it on disk, records it (the authoritative
// storage its primary at generation 0; assignments when the virtual
// storage has a default_replication_factor), then for each secondary
// either replicates now or queues an update job, printing each step as
// Praefect does. Errors carry kTrackErrorPrefix.
Status TrackRepository(const config::Config& config, datastore::PostgresDatastore* store,
                       const TrackRequest& request, bool replicate_immediately, std::ostream& out);

}  // namespace praefect::cli
