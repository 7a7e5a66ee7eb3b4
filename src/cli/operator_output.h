#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "praefect/praefect.pb.h"

// The text the operator subcommands print, byte for byte as Praefect v16
// prints it (../shared/reference/operator-commands.md §2, §4, §9). Pure
// functions, so that the format is tested without a cluster.
namespace praefect::cli {

// One DatalossResponse message of a virtual storage's stream: "  Repositories:"
// and each repository, or "" when it carries none.
std::string FormatDatalossMessage(const gitaly::DatalossResponse& message);

// What dataloss prints after a stream that carried no repository.
std::string DatalossNothingFound(bool partially_unavailable);

// metadata's output.
std::string FormatMetadata(const gitaly::GetRepositoryMetadataResponse& metadata);

// A time as Go's Time.String() prints it in UTC: "2021-04-01 10:04:20 +0000
// UTC", the fraction of a second only when non-zero, trailing zeros cut.
std::string GoUtcTimeString(int64_t seconds, int32_t nanos);

// list-storages' borderless table: the header VIRTUAL_STORAGE, NODE,
// ADDRESS and one row per entry (three cells each).
std::string FormatStorageTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace praefect::cli
