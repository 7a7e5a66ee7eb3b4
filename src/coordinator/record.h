#pragma once

#include <functional>
#include <vector>
#include <string_view>

#include "common/status.h"
#include "datastore/datastore.h"
#include "nodes/node_set.h"
#include "http2/director.h"

// What happens after a node answered a write, before the client hears of
// it: the record in the datastore, and what the client is told when the
// record fails. A change the node applied is never acknowledged unless it
// is recorded; the message says what happened and whether retrying helps.
namespace praefect::coordinator {

// Whether a failed record may succeed when tried again: the database was
// unreachable, timed out or aborted the transaction. Anything else (a
// value it refuses, a bug) fails the same way every time.
[[nodiscard]] bool RetryHelps(const Status& st);

// The client's status for a change the node applied but praefect could not
// record: UNAVAILABLE with "retry" when RetryHelps, else the record's own
// code with "retrying will not help".
Status NotRecorded(const Status& st);

// Records a repository created on `primary` (the node answered
// `node_status`) and answers `done`. When the record fails (the database is
// unreachable, it refuses the row, or another call registered the same
// relative path first), the replica the call created is removed from the
// primary and from the transaction's `voters` again, so that no unregistered copy stays on its disk, and the
// client is told what was created, what was removed, and whether to retry.
// Blocks (datastore, node call): run it off gRPC's threads. `invalidate`
// drops the cache entry of the path.
// REQUIRES: `store` and `primary` outlive the call.
void CommitCreation(datastore::Datastore* store, const datastore::NewRepository& repo, const nodes::Node& primary,
                    const std::vector<const nodes::Node*>& voters, const std::function<void()>& invalidate,
                    const Status& node_status, http2::Route::CommitDone done);

}  // namespace praefect::coordinator
