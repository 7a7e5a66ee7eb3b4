#include "common/json.h"

#include <cstdint>
#include <cstdio>

namespace praefect {
namespace {

void AppendUnicodeEscape(std::string* out, uint32_t code) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(code));
  *out += buf;
}

// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no
// overlongs, no surrogates, at most U+10FFFF), or 0 when it is not one.
size_t Utf8SequenceLength(std::string_view s, size_t i, uint32_t* code) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t len;
  uint32_t cp;
  if (c < 0x80) return *code = c, 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  *code = cp;
  return len;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (size_t i = 0; i < text.size();) {
    uint32_t code = 0;
    size_t len = Utf8SequenceLength(text, i, &code);
    if (len == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    switch (code) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '<':
      case '>':
      case '&':
      case 0x2028:
      case 0x2029:
        AppendUnicodeEscape(&out, code);
        break;
      default:
        if (code < 0x20) {
          AppendUnicodeEscape(&out, code);
        } else {
          out.append(text.substr(i, len));
        }
    }
    i += len;
  }
  out += '"';
}

std::string JsonQuote(std::string_view text) {
  std::string out;
  AppendJsonString(out, text);
  return out;
}

}  // namespace praefect
