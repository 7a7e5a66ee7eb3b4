#include <ostream>

#include "cli/subcommand.h"
#include "cli/version.h"

namespace praefect::cli {

int RunVersion(const Invocation& inv) {
  inv.out << "praefect, version " << kVersion << " (Gitaly protocol " << kGitalyProtoVersion << ")\n";
  return 0;
}

}  // namespace praefect::cli
