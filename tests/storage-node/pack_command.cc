#include "pack_command.h"

#include <cstdlib>

namespace praefect::storagenode {

StatusOr<std::vector<std::string>> PackCommandArgv(const PackCommandOptions& options,
                                                   const google::protobuf::RepeatedPtrField<std::string>& config,
                                                   std::string_view subcommand,
                                                   const std::vector<std::string>& flags, const std::string& path,
                                                   const std::vector<std::string>& forced) {
  std::vector<std::string> argv = {options.git_binary, "-c", "safe.directory=*"};
  for (const std::string& option : config) {
    size_t eq = option.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("invalid git config option \"" + option + "\": expected key=value");
    }
    argv.push_back("-c");
    argv.push_back(option);
  }
  for (const std::string& option : forced) {
    argv.push_back("-c");
    argv.push_back(option);
  }
  argv.emplace_back(subcommand);
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(path);
  return argv;
}

std::vector<std::string> PackCommandEnv(const PackCommandOptions& options, const std::string& git_protocol) {
  const char* path = std::getenv("PATH");
  std::vector<std::string> env = {
      std::string("PATH=") + (path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin"),
      "HOME=" + options.home,
      "GIT_CONFIG_NOSYSTEM=1",
      "GIT_TERMINAL_PROMPT=0",
  };
  if (git_protocol == "version=2") env.push_back("GIT_PROTOCOL=version=2");
  return env;
}

}  // namespace praefect::storagenode
