// praefect -config FILE track-repositories -input-path FILE [-replicate-immediately]
//
// As Praefect's: track-repository for every line of a file of JSON objects
// (relative_path, replica_path, virtual_storage, authoritative_storage).
// Every line is validated (JSON, required fields, duplicates, already
// tracked, present on the authoritative storage) before anything is
// written; one bad line lists every bad line and tracks nothing.
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <ostream>
#include <vector>

#include "cli/go_command.h"
#include "cli/operator_db.h"
#include "cli/praefect_client.h"
#include "cli/repository_tracker.h"
#include "cli/track_request_json.h"

namespace praefect::cli {
namespace {

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "track-repositories";
    s.usage = "process bulk requests to track repositories in Praefect";
    s.description =
        "This command allows bulk requests for repositories to be tracked by Praefect.\n"
        "The -input-path flag must be the path of a file containing the details of the repositories\n"
        "to track as a list of newline-delimited JSON objects. Each line must contain the details for\n"
        "one and only one repository. Each item must contain the following keys:\n"
        "\n"
        "  relative_path - The relative path of the repository on-disk.\n"
        "  replica_path - The on-disk path of the repository on the authoritative storage.\n"
        "  virtual_storage - The Praefect virtual storage name.\n"
        "  authoritative_storage - Which storage to consider as the canonical copy of the repository.\n"
        "\n"
        "If -replicate-immediately is used, the command will attempt to replicate the repositories\n"
        "to the secondaries. Otherwise, replication jobs will be created and will be executed\n"
        "eventually by Praefect itself.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml track-repositories -input-path repos.jsonl";
    s.flags = {BoolFlag("replicate-immediately", "kick off replication jobs immediately"),
               StringFlag("input-path", "path to file with details of repositories to track", true)};
    return s;
  }();
  return spec;
}

struct InvalidLine {
  int line = 0;
  std::string relative_path;
  std::string replica_path;
  std::vector<std::string> errors;
  bool duplicate = false;  // the duplicate message is completed at the end
};

// The checks of one complete line: already tracked, present on the
// authoritative storage. A database error sets *fatal, which stops the
// whole command.
void CheckRequest(const config::Config& config, datastore::PostgresDatastore* store, const TrackRequest& request,
                  InvalidLine* bad, std::ostream& out, Status* fatal) {
  auto tracked = store->GetRepository(request.virtual_storage, request.relative_path);
  if (!tracked.ok()) {
    *fatal = Status(tracked.status().code(), "checking database: " + tracked.status().message());
    return;
  }
  if (tracked->has_value()) {
    bad->errors.push_back("repository is already tracked by Praefect");
    return;
  }
  auto exists = AuthoritativeRepositoryExists(config, request, out);
  if (!exists.ok()) {
    bad->errors.push_back("checking repository on disk: " + exists.status().message());
  } else if (!*exists) {
    bad->errors.push_back("not a valid git repository");
  }
}

std::string LineList(const std::vector<int>& lines) {
  std::string out = "[";
  for (size_t i = 0; i < lines.size(); ++i) out += (i > 0 ? " " : "") + std::to_string(lines[i]);
  return out + "]";
}

}  // namespace

int RunTrackRepositories(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  auto config = LoadOperatorConfig(inv, "track-repositories");
  if (!config) return 1;
  auto store = OpenOperatorStore(*config);
  if (!store.ok()) return PlainError(inv, "connect to database: sql open: " + store.status().message());
  const std::string path = flags->String("input-path");
  std::ifstream input(path);
  if (!input) {
    std::string why = std::strerror(errno);
    if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    return PlainError(inv, "open input: open " + path + ": " + why);
  }

  inv.out << "Validating repository information in " << GoQuote(path) << "\n" << std::flush;
  std::vector<TrackRequest> requests;
  std::vector<InvalidLine> invalid;
  std::map<std::string, std::vector<int>> path_lines;
  int line = 0;
  for (std::string text; std::getline(input, text);) {
    ++line;
    InvalidLine bad;
    bad.line = line;
    auto request = ParseTrackRequestLine(text);
    if (!request.ok()) {
      bad.errors.push_back(request.status().message());
      invalid.push_back(std::move(bad));
      continue;
    }
    bad.relative_path = request->relative_path;
    bad.replica_path = request->replica_path;
    if (request->relative_path.empty()) bad.errors.push_back("\"relative-path\" is a required parameter");
    if (request->replica_path.empty()) bad.errors.push_back("\"replica-path\" is a required parameter");
    if (request->virtual_storage.empty()) bad.errors.push_back("\"virtual-storage\" is a required parameter");
    if (request->authoritative_storage.empty())
      bad.errors.push_back("\"authoritative-storage\" is a required parameter");
    if (!bad.errors.empty()) {
      invalid.push_back(std::move(bad));
      continue;
    }
    // Relative paths are unique across virtual storages: a second line
    // with the same one is invalid whatever its virtual storage.
    auto [it, first] = path_lines.try_emplace(request->relative_path);
    it->second.push_back(line);
    if (!first) {
      bad.duplicate = true;
      invalid.push_back(std::move(bad));
      continue;
    }
    Status fatal;
    CheckRequest(*config, store->get(), *request, &bad, inv.out, &fatal);
    if (!fatal.ok()) return PlainError(inv, fatal.message());
    if (!bad.errors.empty()) {
      invalid.push_back(std::move(bad));
      continue;
    }
    requests.push_back(std::move(*request));
  }
  if (!invalid.empty()) {
    inv.out << "Found " << invalid.size() << " invalid request(s) in " << GoQuote(path) << ":\n";
    for (const InvalidLine& bad : invalid) {
      inv.out << "  line " << bad.line << ", relative_path: " << GoQuote(bad.relative_path)
              << ", replica_path: " << GoQuote(bad.replica_path) << "\n";
      if (bad.duplicate)
        inv.out << "    duplicate entries for relative_path, line " << LineList(path_lines[bad.relative_path]) << "\n";
      for (const std::string& e : bad.errors) inv.out << "    " << e << "\n";
    }
    inv.out << std::flush;
    return PlainError(inv, "invalid entries found, aborting");
  }
  if (requests.empty()) return PlainError(inv, "no repository information found in " + GoQuote(path));

  inv.out << "All repository details are correctly formatted\n";
  inv.out << "Tracking " << line << " repositories in Praefect DB...\n" << std::flush;
  const bool immediately = flags->Bool("replicate-immediately");
  for (const TrackRequest& request : requests) {
    Status st = TrackRepository(*config, store->get(), request, immediately, inv.out);
    inv.out << std::flush;
    if (!st.ok()) return PlainError(inv, "tracking repository " + GoQuote(request.relative_path) + ": " + st.message());
  }
  return 0;
}

}  // namespace praefect::cli
