#include "cli/track_request_json.h"

#include <cstdio>
#include <optional>

namespace praefect::cli {
namespace {

// Go's quoteChar for a scanner error.
std::string QuoteChar(unsigned char c) {
  if (c == '\'') return "'\\''";
  if (c == '"') return "'\"'";
  switch (c) {
    case '\a': return "'\\a'";
    case '\b': return "'\\b'";
    case '\f': return "'\\f'";
    case '\n': return "'\\n'";
    case '\r': return "'\\r'";
    case '\t': return "'\\t'";
    case '\v': return "'\\v'";
    case '\\': return "'\\\\'";
    default: break;
  }
  char buf[16];
  if (c < 0x20 || c == 0x7f) {
    snprintf(buf, sizeof(buf), "'\\x%02x'", c);
  } else if (c < 0x80) {
    snprintf(buf, sizeof(buf), "'%c'", c);
  } else if (c < 0xa0 || c == 0xad) {
    snprintf(buf, sizeof(buf), "'\\u%04x'", c);
  } else {  // Go quotes the byte as the rune U+00XX, in UTF-8
    snprintf(buf, sizeof(buf), "'%c%c'", 0xc0 | (c >> 6), 0x80 | (c & 0x3f));
  }
  return buf;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

constexpr const char kEof[] = "unexpected end of JSON input";

// Go's checkValid: the syntax, with the scanner's messages. The decoding
// below runs only on valid input, as Go's Unmarshal does.
class Validator {
 public:
  explicit Validator(std::string_view in) : in_(in) {}

  std::optional<std::string> Run() {
    if (auto err = Value(0)) return err;
    SkipSpace();
    if (pos_ < in_.size()) return "invalid character " + QuoteChar(in_[pos_]) + " after top-level value";
    return std::nullopt;
  }

 private:
  // Go's scanner has no depth limit below 10000; neither need we, but a
  // deep input must not exhaust the stack.
  static constexpr int kMaxDepth = 10000;

  void SkipSpace() {
    while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
  }
  std::string Bad(std::string_view context) const {
    return "invalid character " + QuoteChar(in_[pos_]) + " " + std::string(context);
  }

  std::optional<std::string> Value(int depth) {
    SkipSpace();
    if (pos_ >= in_.size()) return kEof;
    if (depth > kMaxDepth) return "exceeded max depth";
    const char c = in_[pos_];
    if (c == '{') return Object(depth);
    if (c == '[') return Array(depth);
    if (c == '"') return String();
    if (c == 't') return Literal("true");
    if (c == 'f') return Literal("false");
    if (c == 'n') return Literal("null");
    if (c == '-' || IsDigit(c)) return Number();
    return Bad("looking for beginning of value");
  }

  std::optional<std::string> Object(int depth) {
    ++pos_;
    SkipSpace();
    if (pos_ >= in_.size()) return kEof;
    if (in_[pos_] == '}') {
      ++pos_;
      return std::nullopt;
    }
    while (true) {
      if (in_[pos_] != '"') return Bad("looking for beginning of object key string");
      if (auto err = String()) return err;
      SkipSpace();
      if (pos_ >= in_.size()) return kEof;
      if (in_[pos_] != ':') return Bad("after object key");
      ++pos_;
      if (auto err = Value(depth + 1)) return err;
      SkipSpace();
      if (pos_ >= in_.size()) return kEof;
      if (in_[pos_] == '}') {
        ++pos_;
        return std::nullopt;
      }
      if (in_[pos_] != ',') return Bad("after object key:value pair");
      ++pos_;
      SkipSpace();
      if (pos_ >= in_.size()) return kEof;
    }
  }

  std::optional<std::string> Array(int depth) {
    ++pos_;
    SkipSpace();
    if (pos_ >= in_.size()) return kEof;
    if (in_[pos_] == ']') {
      ++pos_;
      return std::nullopt;
    }
    while (true) {
      if (auto err = Value(depth + 1)) return err;
      SkipSpace();
      if (pos_ >= in_.size()) return kEof;
      if (in_[pos_] == ']') {
        ++pos_;
        return std::nullopt;
      }
      if (in_[pos_] != ',') return Bad("after array element");
      ++pos_;
    }
  }

  std::optional<std::string> String() {
    ++pos_;
    while (true) {
      if (pos_ >= in_.size()) return kEof;
      const unsigned char c = in_[pos_];
      if (c == '"') {
        ++pos_;
        return std::nullopt;
      }
      if (c < 0x20) return Bad("in string literal");
      if (c != '\\') {
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= in_.size()) return kEof;
      const char e = in_[pos_];
      if (e == 'u') {
        ++pos_;
        for (int i = 0; i < 4; ++i, ++pos_) {
          if (pos_ >= in_.size()) return kEof;
          if (!IsHex(in_[pos_])) return Bad("in \\u hexadecimal character escape");
        }
        continue;
      }
      if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) return Bad("in string escape code");
      ++pos_;
    }
  }

  std::optional<std::string> Literal(std::string_view word) {
    ++pos_;
    for (size_t i = 1; i < word.size(); ++i, ++pos_) {
      if (pos_ >= in_.size()) return kEof;
      if (in_[pos_] != word[i])
        return Bad("in literal " + std::string(word) + " (expecting " + QuoteChar(word[i]) + ")");
    }
    return std::nullopt;
  }

  std::optional<std::string> Number() {
    if (in_[pos_] == '-') {
      ++pos_;
      if (pos_ >= in_.size()) return kEof;
      if (!IsDigit(in_[pos_])) return Bad("in numeric literal");
    }
    if (in_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    if (pos_ < in_.size() && in_[pos_] == '.') {
      ++pos_;
      if (pos_ >= in_.size()) return kEof;
      if (!IsDigit(in_[pos_])) return Bad("after decimal point in numeric literal");
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      if (pos_ >= in_.size()) return kEof;
      if (!IsDigit(in_[pos_])) return Bad("in exponent of numeric literal");
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    return std::nullopt;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Decodes valid JSON (checked by Validator) into a TrackRequest.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  StatusOr<TrackRequest> Run() {
    SkipSpace();
    const char c = in_[pos_];
    if (c == 'n') return TrackRequest{};  // null: nothing set
    if (c != '{') return InvalidArgument("json: cannot unmarshal " + Kind(c) +
                                         " into Go value of type praefect.trackRepositoryRequest");
    std::optional<std::string> first_error;
    ++pos_;
    while (true) {
      SkipSpace();
      if (in_[pos_] == '}') break;
      if (in_[pos_] == ',') {
        ++pos_;
        continue;
      }
      const std::string key = DecodeString();
      SkipSpace();
      ++pos_;  // ':'
      SkipSpace();
      std::string* field = Field(key);
      const char v = in_[pos_];
      if (field != nullptr && v == '"') {
        *field = DecodeString();
      } else {
        if (field != nullptr && v != 'n' && !first_error)
          first_error = "json: cannot unmarshal " + Kind(v) + " into Go struct field trackRepositoryRequest." +
                        FieldName(field) + " of type string";
        SkipValue();
      }
    }
    if (first_error) return InvalidArgument(*first_error);
    return current_;
  }

 private:
  void SkipSpace() {
    while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
  }

  static std::string Kind(char c) {
    if (c == '"') return "string";
    if (c == 't' || c == 'f') return "bool";
    if (c == '[') return "array";
    if (c == '{') return "object";
    return "number";
  }

  static bool EqualFold(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char x = a[i], y = b[i];
      if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
      if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
      if (x != y) return false;
    }
    return true;
  }

  std::string* Field(const std::string& key) {
    if (EqualFold(key, "relative_path")) return &current_.relative_path;
    if (EqualFold(key, "replica_path")) return &current_.replica_path;
    if (EqualFold(key, "virtual_storage")) return &current_.virtual_storage;
    if (EqualFold(key, "authoritative_storage")) return &current_.authoritative_storage;
    return nullptr;
  }

  std::string FieldName(const std::string* field) const {
    if (field == &current_.relative_path) return "relative_path";
    if (field == &current_.replica_path) return "replica_path";
    if (field == &current_.virtual_storage) return "virtual_storage";
    return "authoritative_storage";
  }

  uint32_t Hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char c = in_[pos_];
      v = v * 16 + static_cast<uint32_t>(IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
  }

  std::string DecodeString() {
    std::string out;
    ++pos_;
    while (in_[pos_] != '"') {
      if (in_[pos_] != '\\') {
        out += in_[pos_++];
        continue;
      }
      ++pos_;
      const char e = in_[pos_++];
      switch (e) {
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = Hex4();
          if (cp >= 0xd800 && cp < 0xdc00 && pos_ + 6 <= in_.size() && in_[pos_] == '\\' && in_[pos_ + 1] == 'u') {
            size_t save = pos_;
            pos_ += 2;
            uint32_t low = Hex4();
            if (low >= 0xdc00 && low < 0xe000) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            } else {
              pos_ = save;
              cp = 0xfffd;
            }
          } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd;
          }
          AppendUtf8(out, cp);
          break;
        }
        default: out += e; break;  // " \ /
      }
    }
    ++pos_;
    return out;
  }

  void SkipValue() {
    const char c = in_[pos_];
    if (c == '"') {
      DecodeString();
    } else if (c == '{' || c == '[') {
      int depth = 0;
      do {
        const char d = in_[pos_];
        if (d == '"') {
          DecodeString();
          continue;
        }
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') --depth;
        ++pos_;
      } while (depth > 0);
    } else {
      while (pos_ < in_.size() && in_[pos_] != ',' && in_[pos_] != '}' && !IsSpace(in_[pos_])) ++pos_;
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  TrackRequest current_;  // the members decoded so far
};

}  // namespace

StatusOr<TrackRequest> ParseTrackRequestLine(std::string_view line) {
  if (auto err = Validator(line).Run()) return InvalidArgument(*err);
  return Decoder(line).Run();
}

}  // namespace praefect::cli
