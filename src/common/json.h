#pragma once

#include <string>
#include <string_view>

namespace praefect {

// Appends `text` to `out` as a JSON string literal, quotes included, byte for
// byte as Go's encoding/json writes it, so Praefect's JSON output and
// logrus' JSON log lines are reproduced exactly: \" \\ \n \r \t; other
// control characters, <, >, &, U+2028 and U+2029 as \u00XX-style escapes;
// bytes that are not valid UTF-8 as \ufffd.
void AppendJsonString(std::string& out, std::string_view text);

// The same, as a new string.
std::string JsonQuote(std::string_view text);

}  // namespace praefect
