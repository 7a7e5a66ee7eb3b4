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
  // The statement changed more repositories than a notification can name
  // ("relative_paths": null): any of the virtual storage's may have changed.
  bool all = false;
};

// Parses a `repositories_updates` payload: a JSON array of
// {"virtual_storage": "...", "relative_paths": ["...", ...]} (PostgreSQL's
// jsonb text, so any spacing and key order; unknown keys are skipped), or
// "relative_paths": null when the paths would not fit in one notification
// (migration 0005; a praefect older than it fails to parse that and flushes
// its whole cache, which is as safe).
// INVALID_ARGUMENT, saying where and what, for anything else: the caller
// cannot tell what changed and must drop everything it caches.
StatusOr<std::vector<ChangedRepositories>> ParseRepositoriesUpdates(std::string_view payload);

}  // namespace praefect::datastore
