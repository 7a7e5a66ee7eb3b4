// The loader: read → parse (toml++) → decode → secrets → validate.
#include "config/load.h"

#include <cstdlib>

#include "config/toml_reader.h"

namespace praefect::config {
namespace {

using namespace std::chrono_literals;

using internal::Decoded;
using internal::Diagnostics;

// Praefect's setDefaults(): a zero here means "use the default".
void ApplyZeroDefaults(Config* c) {
  if (c->graceful_stop_timeout == Duration(0)) c->graceful_stop_timeout = 1min;
  if (c->failover.bootstrap_interval == Duration(0)) c->failover.bootstrap_interval = 1s;
  if (c->failover.monitor_interval == Duration(0)) c->failover.monitor_interval = 3s;
}

LoadResult Finish(Diagnostics* diag, Decoded* decoded) {
  LoadResult result;
  result.problems = diag->TakeProblems();
  SortProblems(&result.problems);
  if (decoded != nullptr && result.ok()) result.config = std::move(decoded->config);
  return result;
}

}  // namespace

Environment Environment::FromProcess() {
  Environment env;
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && *dir != '\0') {
    env.credentials_directory = dir;
  }
  return env;
}

bool LoadResult::ok() const { return error_count() == 0; }

int LoadResult::error_count() const {
  int n = 0;
  for (const Problem& p : problems) n += p.severity == Severity::kError ? 1 : 0;
  return n;
}

int LoadResult::warning_count() const { return static_cast<int>(problems.size()) - error_count(); }

LoadResult LoadString(std::string_view toml_text, std::string_view source_name, const Environment& env) {
  Diagnostics diag{std::string(source_name)};
  Decoded decoded;
  try {
    toml::table root = toml::parse(toml_text, std::string(source_name));
    internal::Decode(root, &decoded, &diag);
  } catch (const toml::parse_error& e) {
    diag.Error({}, internal::PosOf(e.source()), "invalid TOML: " + std::string(e.description()));
    return Finish(&diag, nullptr);
  } catch (const std::exception& e) {
    // toml++ documents only parse_error; anything else must not escape either.
    diag.Error({}, {}, std::string("could not parse the configuration: ") + e.what());
    return Finish(&diag, nullptr);
  }
  ApplyZeroDefaults(&decoded.config);
  internal::ResolveSecrets(env, &decoded, &diag);
  internal::Validate(decoded, &diag);
  return Finish(&diag, &decoded);
}

LoadResult LoadFile(const std::string& path, const Environment& env) {
  StatusOr<std::string> text = internal::ReadWholeFile(path);
  if (!text.ok()) {
    LoadResult result;
    result.problems.push_back(Problem{{},
                                      "cannot read the configuration file: " + text.status().message() +
                                          " (expected a readable TOML file; give its path with -config)",
                                      path,
                                      0,
                                      0,
                                      Severity::kError});
    return result;
  }
  return LoadString(*text, path, env);
}

}  // namespace praefect::config
