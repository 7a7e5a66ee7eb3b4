#pragma once

#include <string>
#include <string_view>

namespace praefect {

// Standard base64 (RFC 4648 §4, padded): gRPC's binary metadata and the
// gitaly-servers header.
std::string Base64Encode(std::string_view in);

}  // namespace praefect
