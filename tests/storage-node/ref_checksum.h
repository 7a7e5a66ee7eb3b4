#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace praefect::storagenode {

// Gitaly's repository checksum (internal/git/checksum.go, and before it
// internal/service/repository/calculate_checksum.go): for every line
// "<oid> <refname>" of `git show-ref --head` that matches the regular
// expression `HEAD|(refs/(heads|tags|keep-around|merge-requests|environments|notes)/)`
// (unanchored, as Go's regexp.Match), the SHA-1 of the line is XORed into a
// 160-bit number. Not thread-safe.
class RefChecksum {
 public:
  // `line` without its trailing newline.
  void AddLine(std::string_view line);
  // Adds every line of `show-ref` output.
  void AddOutput(std::string_view output);

  bool empty() const { return count_ == 0; }
  // The number as Gitaly prints it: hex of the big-endian bytes without
  // leading zero bytes (Go's big.Int.Bytes()); forty zeros when the sum is
  // zero or no ref was added.
  std::string Hex() const;

  // The allow-list test, exposed for tests.
  static bool Allowed(std::string_view line);

 private:
  std::array<uint8_t, 20> sum_{};
  size_t count_ = 0;
};

}  // namespace praefect::storagenode
