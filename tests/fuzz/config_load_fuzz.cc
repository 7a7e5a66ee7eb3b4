// Fuzzes the config.toml loader: any input must load or be refused with
// problems, never crash, hang or leak an exception; a refused input has at
// least one error, and an accepted one yields a configuration.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // No credentials directory: the fuzzer must not read the machine's files.
  praefect::config::Environment env;
  praefect::config::LoadResult result = praefect::config::LoadString(text, "fuzz.toml", env);
  if (result.ok() != result.config.has_value()) std::abort();
  if (!result.ok() && result.error_count() == 0) std::abort();
  for (const auto& problem : result.problems) {
    if (problem.message.empty()) std::abort();
    // Every problem is printable for people.
    if (praefect::config::FormatProblemForHumans(problem).empty()) std::abort();
  }
  (void)praefect::config::FormatErrorsAsJson(result.problems, "fuzz.toml");
  return 0;
}
