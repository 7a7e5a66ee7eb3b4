#include "cli/load_config.h"

#include <vector>

#include "protoregistry/registry.h"

namespace praefect::cli {
namespace {

void CheckRegistryMethods(config::LoadResult* result) {
  if (!result->config || result->config->registry_methods.empty()) return;
  const auto& entries = result->config->registry_methods;
  std::vector<protoregistry::MethodSpec> specs;
  specs.reserve(entries.size());
  for (const config::MethodEntry& e : entries) {
    specs.push_back({e.name, e.operation, e.scope, e.target_repository_field, e.additional_repository_field,
                     e.storage_field, e.shape});
  }
  auto registry = protoregistry::Registry::Create(specs);
  if (registry.ok()) return;
  // The registry lists every bad entry by position and name in one message;
  // point at the first entry so the operator lands in the right place.
  result->problems.push_back(config::Problem{{"registry", "method"},
                                             registry.status().message(),
                                             entries.front().file,
                                             entries.front().line,
                                             1,
                                             config::Severity::kError});
  config::SortProblems(&result->problems);
  result->config.reset();
}

}  // namespace

config::LoadResult LoadConfigFile(const std::string& path, bool skip_unreadable_credentials) {
  config::Environment env = config::Environment::FromProcess();
  env.skip_unreadable_credentials = skip_unreadable_credentials;
  config::LoadResult result = config::LoadFile(path, env);
  CheckRegistryMethods(&result);
  return result;
}

config::LoadResult LoadConfigString(std::string_view toml, std::string_view source_name) {
  config::LoadResult result = config::LoadString(toml, source_name, config::Environment::FromProcess());
  CheckRegistryMethods(&result);
  return result;
}

}  // namespace praefect::cli
