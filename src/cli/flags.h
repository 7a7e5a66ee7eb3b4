#pragma once

#include <optional>
#include <string_view>

namespace praefect::cli {

// Whether `arg` is the flag `name` in any of the forms Go's flag package
// accepts: -name, --name, -name=value, --name=value. On a match,
// `*inline_value` is the text after '=' (possibly empty), or nullopt when
// there was no '=' (the value, if the flag takes one, is the next argument).
bool MatchFlag(std::string_view arg, std::string_view name, std::optional<std::string_view>* inline_value);

}  // namespace praefect::cli
