#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status_or.h"

namespace praefect::storagenode {

// The transaction praefect attached to a call (reference/transactions.md
// §3): which transaction the node votes in, under which voter name, and
// whether it is the primary (the only node that runs repository hooks).
struct TransactionInfo {
  uint64_t id = 0;
  std::string node;
  bool primary = false;
};

// The metadata key praefect sends it under.
inline constexpr std::string_view kTransactionMetadataKey = "gitaly-reference-transaction";

// Parses the metadata value: standard padded base64 of the JSON object
// {"id":<uint64>,"node":"<storage>","primary":<bool>} (keys in any order,
// unknown keys such as Gitaly's own backchannel_id ignored). id and node
// are required; INVALID_ARGUMENT says what is wrong.
[[nodiscard]] StatusOr<TransactionInfo> ParseTransactionInfo(std::string_view header);

// The metadata value for `info`, compact JSON in praefect's key order.
std::string EncodeTransactionInfo(const TransactionInfo& info);

}  // namespace praefect::storagenode
