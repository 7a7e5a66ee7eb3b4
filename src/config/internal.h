#pragma once

// Internal to src/config: shared by the loader, the secrets resolver and the
// validator. Not part of the module's interface.

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/load.h"
#include "config/problem.h"

namespace praefect::config::internal {

struct Pos {
  int line = 0;
  int column = 0;
};

// Collects the problems of one load, and where in the config file each key
// was written so that later checks can point at it. Not thread-safe.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  Diagnostics(const Diagnostics&) = delete;
  Diagnostics& operator=(const Diagnostics&) = delete;

  const std::string& file() const { return file_; }

  // A problem in the config file itself.
  void Error(KeyPath key, Pos pos, std::string message);
  void Warning(KeyPath key, Pos pos, std::string message);
  // A problem located elsewhere (secrets file, credential).
  void Add(Problem problem) { problems_.push_back(std::move(problem)); }

  void Remember(const KeyPath& key, Pos pos);
  // Where `key` was written; {0, 0} when it was not.
  Pos Where(const KeyPath& key) const;
  bool WasWritten(const KeyPath& key) const { return Where(key).line != 0; }
  // Where `key` was written, else where its closest written parent was
  // (a missing key is reported at its table's header).
  Pos Nearest(KeyPath key) const;

  bool has_errors() const;
  std::vector<Problem> TakeProblems() { return std::move(problems_); }

 private:
  std::string file_;
  std::vector<Problem> problems_;
  std::map<std::string, Pos> positions_;  // by KeyPathToString()
};

// The decoded tree, with the key paths under which each virtual storage and
// node was written (the legacy top-level `[[node]]` list has other paths than
// `[[virtual_storage.node]]`).
struct Decoded {
  Config config;
  std::vector<KeyPath> vs_name_keys;                        // per virtual storage: its name's key
  std::vector<KeyPath> vs_keys;                             // per virtual storage: its table
  std::vector<std::vector<KeyPath>> node_keys;              // per node: its table
  std::vector<std::vector<std::string>> storage_key_names;  // "storage", or legacy "name"
};

KeyPath Join(const KeyPath& prefix, std::string_view key);
std::string IndexKey(size_t index);  // "[3]"

// Phase 2: applies $CREDENTIALS_DIRECTORY and `secrets_file` to the tokens
// and passwords of `decoded->config` (without the credentials, and a
// warning, when env.skip_unreadable_credentials and the directory cannot be
// opened).
void ResolveSecrets(const Environment& env, Decoded* decoded, Diagnostics* diag);

// Phase 3: every semantic check, all problems reported.
void Validate(const Decoded& decoded, Diagnostics* diag);

}  // namespace praefect::config::internal

#include "common/status_or.h"

namespace praefect::config::internal {

// The whole content of a regular file; the error message names the reason
// (strerror, "is a directory") but not the path, which the caller adds.
StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace praefect::config::internal
