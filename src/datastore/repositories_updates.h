#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"

namespace praefect::datastore {

// The channel the triggers of migration 0002 notify when replicas of
// repositories change (see RepositoryCache).
inline constexpr std::string_view kRepositoriesUpdatesChannel = "repositories_updates";

// The repositories of one virtual storage a notification names.
struct ChangedRepositories {
  std::string virtual_storage;
  std::vector<std::string> relative_paths;
};

// Parses a `repositories_updates` payload: a JSON array of
// {"virtual_storage": "...", "relative_paths": ["...", ...]} (PostgreSQL's
// jsonb text, so any spacing and key order; unknown keys are skipped).
// INVALID_ARGUMENT, saying where and what, for anything else: the caller
// cannot tell what changed and must drop everything it caches.
StatusOr<std::vector<ChangedRepositories>> ParseRepositoriesUpdates(std::string_view payload);

}  // namespace praefect::datastore
