#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/problem.h"

namespace praefect::config {

// What the loader takes from the process environment. Tests build one by
// hand; the command line uses FromProcess().
struct Environment {
  // $CREDENTIALS_DIRECTORY, set by systemd for units with LoadCredential=.
  std::optional<std::string> credentials_directory;
  // When credentials_directory cannot be opened, check the configuration
  // without the credentials and say so in a warning, instead of an error per
  // secret. For `configuration validate` under ExecReload=: systemd 252 sets
  // $CREDENTIALS_DIRECTORY for ExecReload= commands but mounts an
  // inaccessible directory over /run/credentials for them. A directory that
  // opens but holds a credential that cannot be read is an error still.
  bool skip_unreadable_credentials = false;

  static Environment FromProcess();
};

// The outcome of loading: every problem found (all of them, not just the
// first), and the configuration when there is no error. Warnings alone do
// not keep `config` from being set.
struct LoadResult {
  std::optional<Config> config;
  std::vector<Problem> problems;  // sorted by SortProblems()

  // True when no problem is an error (then `config` is set).
  [[nodiscard]] bool ok() const;
  int error_count() const;
  int warning_count() const;
};

// Reads, parses, resolves secrets for and validates the config.toml at
// `path`. A file that cannot be read is reported as a problem, not a crash.
[[nodiscard]] LoadResult LoadFile(const std::string& path, const Environment& env);

// The same for TOML text already in memory; `source_name` is what problems
// name as their file ("<stdin>", a path).
[[nodiscard]] LoadResult LoadString(std::string_view toml, std::string_view source_name,
                                    const Environment& env);

}  // namespace praefect::config
