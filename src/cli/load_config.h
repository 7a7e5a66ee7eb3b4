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
config::LoadResult LoadConfigFile(const std::string& path);
config::LoadResult LoadConfigString(std::string_view toml, std::string_view source_name);

}  // namespace praefect::cli
