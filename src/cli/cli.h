#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace praefect::cli {

// Runs the praefect command line, `praefect [-config FILE] [subcommand]
// [flags]`, with Go flag syntax as Praefect accepts it (-config FILE,
// --config=FILE). Returns the process exit code: 0 success, 1 failure, 2 bad
// usage or an invalid configuration.
int Run(const std::vector<std::string>& argv, std::istream& in, std::ostream& out, std::ostream& err);

// Run() on the process's arguments and standard streams.
int Main(int argc, char** argv);

}  // namespace praefect::cli
