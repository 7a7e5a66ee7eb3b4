#include "cli/operator_output.h"

#include <algorithm>
#include <ctime>

#include "cli/go_command.h"

namespace praefect::cli {
namespace {

// Praefect's indentPrintln: two spaces per level.
void Line(std::string* out, int level, const std::string& text) {
  out->append(static_cast<size_t>(level) * 2, ' ');
  *out += text;
  *out += '\n';
}

std::string Markers(bool assigned, bool healthy) {
  return std::string(assigned ? ", assigned host" : "") + (healthy ? "" : ", unhealthy");
}

}  // namespace

std::string FormatDatalossMessage(const gitaly::DatalossResponse& message) {
  std::string out;
  if (message.repositories_size() == 0) return out;
  Line(&out, 1, "Repositories:");
  for (const auto& repo : message.repositories()) {
    Line(&out, 2, repo.relative_path() + (repo.unavailable() ? " (unavailable)" : "") + ":");
    Line(&out, 3, "Primary: " + (repo.primary().empty() ? std::string("No Primary") : repo.primary()));
    Line(&out, 3, "In-Sync Storages:");
    for (const auto& s : repo.storages()) {
      if (s.behind_by() != 0) continue;
      Line(&out, 4, s.name() + Markers(s.assigned(), s.healthy()));
    }
    Line(&out, 3, "Outdated Storages:");
    for (const auto& s : repo.storages()) {
      if (s.behind_by() == 0) continue;
      Line(&out, 4, s.name() + " is behind by " + std::to_string(s.behind_by()) + " change" +
                        (s.behind_by() == 1 ? "" : "s") + " or less" + Markers(s.assigned(), s.healthy()));
    }
  }
  return out;
}

std::string DatalossNothingFound(bool partially_unavailable) {
  return partially_unavailable ? "  All repositories are fully available on all assigned storages!\n"
                               : "  All repositories are available!\n";
}

std::string GoUtcTimeString(int64_t seconds, int32_t nanos) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  std::string out = buf;
  if (nanos != 0) {
    std::string frac = std::to_string(1000000000 + static_cast<int64_t>(nanos)).substr(1);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    out += "." + frac;
  }
  return out + " +0000 UTC";
}

std::string FormatMetadata(const gitaly::GetRepositoryMetadataResponse& m) {
  std::string out;
  out += "Repository ID: " + std::to_string(m.repository_id()) + "\n";
  out += "Virtual Storage: " + GoQuote(m.virtual_storage()) + "\n";
  out += "Relative Path: " + GoQuote(m.relative_path()) + "\n";
  out += "Replica Path: " + GoQuote(m.replica_path()) + "\n";
  out += "Primary: " + GoQuote(m.primary()) + "\n";
  out += "Generation: " + std::to_string(m.generation()) + "\n";
  out += "Replicas:\n";
  for (const auto& r : m.replicas()) {
    std::string generation = std::to_string(r.generation()) + ", fully up to date";
    if (r.generation() == -1) {
      generation = "replica not yet created";
    } else if (r.generation() < m.generation()) {
      generation = std::to_string(r.generation()) + ", behind by " + std::to_string(m.generation() - r.generation()) +
                   " changes";
    }
    out += "- Storage: " + GoQuote(r.storage()) + "\n";
    out += std::string("  Assigned: ") + (r.assigned() ? "true" : "false") + "\n";
    out += "  Generation: " + generation + "\n";
    out += std::string("  Healthy: ") + (r.healthy() ? "true" : "false") + "\n";
    out += std::string("  Valid Primary: ") + (r.valid_primary() ? "true" : "false") + "\n";
    out += "  Verified At: " +
           (r.has_verified_at() ? GoUtcTimeString(r.verified_at().seconds(), r.verified_at().nanos())
                                : std::string("unverified")) +
           "\n";
  }
  return out;
}

std::string FormatStorageTable(const std::vector<std::vector<std::string>>& rows) {
  const std::vector<std::string> header = {"VIRTUAL_STORAGE", "NODE", "ADDRESS"};
  std::vector<size_t> width;
  for (const auto& h : header) width.push_back(h.size());
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  auto cell = [&](const std::string& text, size_t i) { return text + std::string(width[i] - text.size(), ' '); };
  std::string out;
  for (size_t i = 0; i < header.size(); ++i) out += cell(header[i], i) + (i + 1 < header.size() ? "\t" : " ");
  out += "\n";
  for (const auto& row : rows) {
    for (size_t i = 0; i < header.size(); ++i) out += cell(i < row.size() ? row[i] : "", i) + "\t";
    out += "\n";
  }
  return out;
}

}  // namespace praefect::cli
