#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace praefect {

// `text` in double quotes for an error or log message, safe to print
// whatever the client sent: printable ASCII and valid UTF-8 as they are,
// \" and \\ escaped, \n \t \r and every other control byte or byte that is
// not valid UTF-8 as an escape (\x00), in the manner of Go's %q. Text longer
// than `max_bytes` is cut (never inside a UTF-8 sequence) and ends with
// "..." and the full length: "abc"... (3000 bytes).
std::string QuoteForMessage(std::string_view text, size_t max_bytes = 128);

}  // namespace praefect
