// Fuzzes the relative path rules (wire/relative_path.h) against an oracle
// written here from the rules' text: the two must agree on every input, and
// a refusal's message must be printable whatever the input was (it goes to
// clients and into logs).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "wire/relative_path.h"

namespace {

// Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF),
// decoded by hand.
bool Utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<uint8_t>(s[i]);
    uint32_t cp;
    size_t n;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      n = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

bool OracleAccepts(std::string_view p) {
  if (p.empty() || p.size() > praefect::wire::kMaxRelativePathBytes) return false;
  for (char c : p) {
    const auto b = static_cast<uint8_t>(c);
    if (b < 0x20 || b == 0x7F) return false;
  }
  if (!Utf8(p)) return false;
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (true) {
    size_t slash = p.find('/', start);
    segments.push_back(p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  for (std::string_view s : segments) {
    if (s.empty() || s == "." || s == ".." || s.size() > praefect::wire::kMaxPathSegmentBytes) return false;
  }
  return segments.front() != "+gitaly";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view path(reinterpret_cast<const char*>(data), size);
  praefect::Status st = praefect::wire::ValidateRelativePath("relative path", path);
  if (st.ok() != OracleAccepts(path)) std::abort();
  if (!st.ok()) {
    if (st.code() != praefect::StatusCode::kInvalidArgument) std::abort();
    const std::string& m = st.message();
    if (!Utf8(m) || m.size() > 1024) std::abort();
    for (char c : m) {
      const auto b = static_cast<uint8_t>(c);
      if (b < 0x20 || b == 0x7F) std::abort();
    }
  }
  praefect::Status od = praefect::wire::ValidateObjectDirectory("git_object_directory", path);
  if (od.ok() && !Utf8(path)) std::abort();
  return 0;
}
