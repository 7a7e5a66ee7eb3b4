#include "ref_checksum.h"

#include <openssl/sha.h>

namespace praefect::storagenode {

bool RefChecksum::Allowed(std::string_view line) {
  if (line.find("HEAD") != std::string_view::npos) return true;
  for (std::string_view ns : {"refs/heads/", "refs/tags/", "refs/keep-around/", "refs/merge-requests/",
                              "refs/environments/", "refs/notes/"}) {
    if (line.find(ns) != std::string_view::npos) return true;
  }
  return false;
}

void RefChecksum::AddLine(std::string_view line) {
  if (!Allowed(line)) return;
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(line.data()), line.size(), digest);
  for (size_t i = 0; i < sum_.size(); ++i) sum_[i] ^= digest[i];
  ++count_;
}

void RefChecksum::AddOutput(std::string_view output) {
  while (!output.empty()) {
    size_t nl = output.find('\n');
    std::string_view line = output.substr(0, nl);
    if (!line.empty()) AddLine(line);
    if (nl == std::string_view::npos) break;
    output.remove_prefix(nl + 1);
  }
}

std::string RefChecksum::Hex() const {
  static const char kDigits[] = "0123456789abcdef";
  size_t first = 0;
  while (first < sum_.size() && sum_[first] == 0) ++first;
  if (first == sum_.size()) return std::string(40, '0');
  std::string out;
  for (size_t i = first; i < sum_.size(); ++i) {
    out += kDigits[sum_[i] >> 4];
    out += kDigits[sum_[i] & 15];
  }
  return out;
}

}  // namespace praefect::storagenode
