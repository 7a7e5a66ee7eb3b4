#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status_or.h"

namespace praefect::storagenode {

// Standard base64 (padded) to bytes, for the node's JSON metadata headers
// (gitaly-servers, gitaly-reference-transaction). Errors are
// INVALID_ARGUMENT prefixed with `what` (the header's name).
[[nodiscard]] StatusOr<std::string> DecodeBase64(std::string_view text, std::string_view what);

// A small pull parser for the JSON those headers carry: objects, strings,
// unsigned integers and booleans, skipping any other value it meets. Errors
// are INVALID_ARGUMENT naming `what` and the byte offset. Not thread-safe;
// `text` must outlive the reader.
class JsonReader {
 public:
  JsonReader(std::string_view text, std::string_view what) : text_(text), what_(what) {}

  Status Error(const std::string& problem) const;

  void SkipSpace();
  bool Peek(char c);
  // Consumes `c` (after blanks) when it comes next.
  bool Consume(char c);
  bool AtEnd();

  [[nodiscard]] StatusOr<std::string> String();
  // A JSON number that is a whole number in [0, 2^64).
  [[nodiscard]] StatusOr<uint64_t> Uint64();
  [[nodiscard]] StatusOr<bool> Bool();
  // Skips one value of any type.
  [[nodiscard]] Status SkipValue(int depth = 0);

 private:
  StatusOr<uint32_t> Hex4();
  static void AppendUtf8(std::string& out, uint32_t cp);

  std::string_view text_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace praefect::storagenode
