#pragma once

#include <string>
#include <string_view>

namespace praefect {

// Appends `s` to `out` as a JSON string literal, quotes included. Control
// characters are escaped; bytes that are not valid UTF-8 are replaced by
// U+FFFD, as Go's encoding/json does, so the output is always valid JSON.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace praefect
