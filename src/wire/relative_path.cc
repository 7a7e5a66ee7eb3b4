#include "wire/relative_path.h"

#include <cstdint>
#include <string>

#include "common/quote.h"
#include "wire/field_path.h"

namespace praefect::wire {
namespace {

std::string Named(std::string_view what, std::string_view path) {
  return std::string(what) + " " + QuoteForMessage(path);
}

Status Refuse(std::string_view what, std::string_view path, std::string rule) {
  return InvalidArgument(Named(what, path) + ": " + std::move(rule));
}

std::string Hex(uint8_t b) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[b >> 4] + kHex[b & 0xF];
}

// The rules every path-like string obeys: length, NUL, control characters,
// UTF-8.
Status CheckBytes(std::string_view what, std::string_view path) {
  if (path.size() > kMaxRelativePathBytes)
    return Refuse(what, path,
                  "is " + std::to_string(path.size()) + " bytes long; at most " +
                      std::to_string(kMaxRelativePathBytes) + " bytes are accepted");
  for (size_t i = 0; i < path.size(); ++i) {
    const auto b = static_cast<uint8_t>(path[i]);
    if (b == 0)
      return Refuse(what, path, "contains a NUL byte at offset " + std::to_string(i) + "; paths cannot contain NUL");
    if (b < 0x20 || b == 0x7F)
      return Refuse(what, path,
                    "contains the control character " + Hex(b) + " at offset " + std::to_string(i) +
                        "; paths cannot contain control characters");
  }
  if (!IsValidUtf8(path)) return Refuse(what, path, "is not valid UTF-8");
  return Status::Ok();
}

}  // namespace

Status ValidateRelativePath(std::string_view what, std::string_view path) {
  if (path.empty())
    return InvalidArgument(std::string(what) +
                           " is empty (path not set): give a path relative to the storage, e.g. "
                           "\"@hashed/ab/cd/abcd.git\"");
  if (Status st = CheckBytes(what, path); !st.ok()) return st;
  if (path.front() == '/')
    return Refuse(what, path, "is absolute; give the path relative to the storage, without a leading \"/\"");

  // Gitaly's rule first: where does the path lead once "." and ".." are
  // applied? Above the root is an escape, the root itself is no repository.
  int64_t depth = 0;
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    if (segment == "..") {
      if (--depth < 0) return Refuse(what, path, "relative path escapes root directory");
    } else if (!segment.empty() && segment != ".") {
      ++depth;
    }
    start = end + 1;
  }
  if (depth == 0) return Refuse(what, path, "names the storage's root directory, not a repository");

  // Then the clean form, segment by segment.
  bool first = true;
  for (size_t start = 0; start <= path.size(); first = false) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    if (segment.empty())
      return Refuse(what, path, "has an empty segment (\"//\" or a trailing \"/\"); send the path in its clean form");
    if (segment == "." || segment == "..")
      return Refuse(what, path,
                    "has a \"" + std::string(segment) + "\" segment; send the path in its clean form (\"a/./b\" " +
                        "and \"a/x/../b\" are \"a/b\")");
    if (segment.size() > kMaxPathSegmentBytes)
      return Refuse(what, path,
                    "has a segment of " + std::to_string(segment.size()) + " bytes; at most " +
                        std::to_string(kMaxPathSegmentBytes) + " bytes are allowed per segment");
    if (first && segment == "+gitaly")
      return Refuse(what, path, "is inside \"+gitaly\", the storage's internal directory, which holds no repositories");
    start = end + 1;
  }
  return Status::Ok();
}

Status ValidateObjectDirectory(std::string_view what, std::string_view path) { return CheckBytes(what, path); }

}  // namespace praefect::wire
