#pragma once

#include <string>
#include <string_view>

#include "config/load.h"

namespace praefect::cli {

// Loads a configuration the way every subcommand does: config::LoadFile (or
// LoadString) with the process environment, then the checks that need other
// modules: the [[registry.method]] entries are validated by building the
// method registry from them. Problems from both land in one LoadResult, and
// `config` is cleared when there is any error.
// `skip_unreadable_credentials`: see config::Environment (configuration
// validate -skip-unreadable-credentials, under ExecReload=).
config::LoadResult LoadConfigFile(const std::string& path, bool skip_unreadable_credentials = false);
config::LoadResult LoadConfigString(std::string_view toml, std::string_view source_name);

}  // namespace praefect::cli
