// praefect configuration validate
//
// Two forms:
//   praefect configuration validate < config.toml
//     Praefect's own: reads TOML from stdin, prints the errors as JSON
//     ({"errors":[{"key":[...],"message":"..."}]}) on stdout, nothing when
//     valid. Warnings, which Praefect does not have, go to stderr for people.
//   praefect -config config.toml configuration validate [-skip-unreadable-credentials]
//     For people: every problem (errors, then warnings) as
//     `file:line:column: severity: key: message` on stderr, then a summary.
//     -skip-unreadable-credentials (the unit's ExecReload=): a credentials
//     directory this process cannot open is a warning, and the file is
//     checked without the credentials (config::Environment says why).
//     The [tls] certificate is checked as serve checks it at start and on
//     reload: readable, valid now, and matching its key (without the
//     credentials: its dates only, since the key may be one of them).
// Exit codes as Praefect's: 0 valid (warnings allowed), 2 invalid, 1 usage.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/load_config.h"
#include "cli/sql_common.h"  // ParseBoolFlag
#include "cli/subcommand.h"
#include "server/serving_tls.h"

namespace praefect::cli {
namespace {

constexpr int kValidationErrorCode = 2;

constexpr const char kUsage[] =
    "NAME:\n"
    "   praefect configuration validate - validates configuration\n"
    "\n"
    "USAGE:\n"
    "   praefect configuration validate < praefect.config.toml\n"
    "   praefect -config praefect.config.toml configuration validate [-skip-unreadable-credentials]\n"
    "\n"
    "DESCRIPTION:\n"
    "   Validate Praefect configuration.\n"
    "\n"
    "   Applies validation rules to Praefect configuration provided on stdin and returns validation\n"
    "   errors in JSON format on stdout. With -config, validates that file instead and prints every\n"
    "   problem, with its line, for people on stderr. -skip-unreadable-credentials: when\n"
    "   $CREDENTIALS_DIRECTORY cannot be opened (systemd does not give ExecReload= commands the\n"
    "   credentials), check without them and say so in a warning.\n";

std::string Plural(int n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

// False when $CREDENTIALS_DIRECTORY is set but cannot be opened (systemd
// 252's ExecReload=), so that the credentials were skipped.
bool CredentialsReadable() {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (dir == nullptr || *dir == '\0') return true;
  int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// The certificate [tls] names, as serve would load it now.
void CheckCertificate(config::LoadResult* result, bool with_key) {
  if (!result->config || result->config->tls.certificate_path.empty()) return;
  Status st = server::CheckServingCertificate(result->config->tls, with_key, std::chrono::system_clock::now());
  if (st.ok()) return;
  result->problems.push_back(config::Problem{{}, st.message(), "", 0, 0, config::Severity::kError});
  config::SortProblems(&result->problems);
  result->config.reset();
}

int ValidateFileForHumans(const std::string& path, bool skip_unreadable_credentials, std::ostream& err) {
  config::LoadResult result = LoadConfigFile(path, skip_unreadable_credentials);
  CheckCertificate(&result, !skip_unreadable_credentials || CredentialsReadable());
  for (const config::Problem& p : result.problems) err << config::FormatProblemForHumans(p) << "\n";
  if (result.ok()) {
    err << path << ": configuration is valid";
    if (result.warning_count() > 0) err << " (" << Plural(result.warning_count(), "warning") << ")";
    err << "\n";
    return 0;
  }
  err << path << ": configuration is invalid: " << Plural(result.error_count(), "error") << ", "
      << Plural(result.warning_count(), "warning") << "\n";
  return kValidationErrorCode;
}

int ValidateStdinAsJson(std::istream& in, std::ostream& out, std::ostream& err) {
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    err << "processing input data: cannot read standard input\n";
    return 1;
  }
  config::LoadResult result = LoadConfigString(text, "<stdin>");
  for (const config::Problem& p : result.problems) {
    if (p.severity == config::Severity::kWarning) err << config::FormatProblemForHumans(p) << "\n";
  }
  out << config::FormatErrorsAsJson(result.problems, "<stdin>");
  return result.ok() ? 0 : kValidationErrorCode;
}

}  // namespace

int RunConfigurationValidate(const Invocation& inv) {
  bool skip_unreadable_credentials = false;
  for (const std::string& arg : inv.args) {
    // Only for a file: Praefect's stdin form takes no argument.
    bool bad = false;
    if (inv.config_path && ParseBoolFlag(arg, "skip-unreadable-credentials", &skip_unreadable_credentials, &bad) &&
        !bad) {
      continue;
    }
    inv.out << kUsage;
    inv.err << "invalid argument(s)\n";
    return 1;
  }
  if (inv.config_path) return ValidateFileForHumans(*inv.config_path, skip_unreadable_credentials, inv.err);
  return ValidateStdinAsJson(inv.in, inv.out, inv.err);
}

}  // namespace praefect::cli
