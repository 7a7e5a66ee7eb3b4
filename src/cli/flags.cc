#include "cli/flags.h"

namespace praefect::cli {

bool MatchFlag(std::string_view arg, std::string_view name, std::optional<std::string_view>* inline_value) {
  if (arg.starts_with("--")) {
    arg.remove_prefix(2);
  } else if (arg.starts_with("-")) {
    arg.remove_prefix(1);
  } else {
    return false;
  }
  if (arg == name) {
    *inline_value = std::nullopt;
    return true;
  }
  if (arg.starts_with(name) && arg.size() > name.size() && arg[name.size()] == '=') {
    *inline_value = arg.substr(name.size() + 1);
    return true;
  }
  return false;
}

}  // namespace praefect::cli
