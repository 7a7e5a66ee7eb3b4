#pragma once

#include <string>
#include <string_view>

#include "common/status_or.h"

namespace praefect::cli {

// One repository to track (track-repository's flags, a line of
// track-repositories' input).
struct TrackRequest {
  std::string relative_path;          // as clients will name it
  std::string replica_path;           // where the authoritative node keeps it
  std::string virtual_storage;
  std::string authoritative_storage;  // becomes the primary
};

// One line of track-repositories' input, decoded as Praefect's Go
// json.Unmarshal decodes it into its trackRepositoryRequest: an object with
// string members relative_path, replica_path, virtual_storage and
// authoritative_storage (keys matched case-insensitively, the last of equal
// keys wins, unknown keys and null values ignored). On bad input,
// INVALID_ARGUMENT with Go's message ("invalid character '@' looking for
// beginning of value", "unexpected end of JSON input", "json: cannot
// unmarshal number into Go struct field ..."), which operators see as is.
// Bytes from outside: fuzzed (tests/fuzz/track_request_json_fuzz.cc).
StatusOr<TrackRequest> ParseTrackRequestLine(std::string_view line);

}  // namespace praefect::cli
