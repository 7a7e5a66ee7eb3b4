#include "cli/cli.h"

int main(int argc, char** argv) { return praefect::cli::Main(argc, argv); }
