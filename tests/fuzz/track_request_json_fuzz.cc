// Fuzzes track-repositories' line decoding (cli/track_request_json.h): it
// must not crash or read out of bounds on any line, and its message for a
// refused line must not be empty (operators see it, with the line number).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cli/track_request_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto parsed = praefect::cli::ParseTrackRequestLine(line);
  if (!parsed.ok() && parsed.status().message().empty()) abort();
  return 0;
}
