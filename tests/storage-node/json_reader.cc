#include "json_reader.h"

#include <openssl/evp.h>

#include <cctype>

namespace praefect::storagenode {

StatusOr<std::string> DecodeBase64(std::string_view text, std::string_view what) {
  const std::string prefix(what);
  if (text.size() % 4 != 0) return InvalidArgument(prefix + ": not base64: length is not a multiple of 4");
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return InvalidArgument(prefix + ": not base64");
  // EVP_DecodeBlock counts padding as zero bytes.
  size_t len = static_cast<size_t>(n);
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

Status JsonReader::Error(const std::string& problem) const {
  return InvalidArgument(what_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " + problem);
}

void JsonReader::SkipSpace() {
  while (pos_ < text_.size() &&
         (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
    ++pos_;
}

bool JsonReader::Peek(char c) {
  SkipSpace();
  return pos_ < text_.size() && text_[pos_] == c;
}

bool JsonReader::Consume(char c) {
  if (!Peek(c)) return false;
  ++pos_;
  return true;
}

bool JsonReader::AtEnd() {
  SkipSpace();
  return pos_ == text_.size();
}

StatusOr<std::string> JsonReader::String() {
  if (!Consume('"')) return Error("expected a string");
  std::string out;
  while (pos_ < text_.size()) {
    char c = text_[pos_++];
    if (c == '"') return out;
    if (static_cast<unsigned char>(c) < 0x20) return Error("control character in a string");
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (pos_ >= text_.size()) break;
    char e = text_[pos_++];
    switch (e) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '/': out.push_back('/'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        auto cp = Hex4();
        if (!cp.ok()) return cp.status();
        uint32_t code = *cp;
        if (code >= 0xD800 && code < 0xDC00) {
          if (pos_ + 2 > text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u')
            return Error("unpaired surrogate");
          pos_ += 2;
          auto low = Hex4();
          if (!low.ok()) return low.status();
          if (*low < 0xDC00 || *low > 0xDFFF) return Error("unpaired surrogate");
          code = 0x10000 + ((code - 0xD800) << 10) + (*low - 0xDC00);
        }
        AppendUtf8(out, code);
        break;
      }
      default: return Error("unknown escape");
    }
  }
  return Error("unterminated string");
}

StatusOr<uint64_t> JsonReader::Uint64() {
  SkipSpace();
  size_t start = pos_;
  uint64_t value = 0;
  while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
    uint64_t digit = static_cast<uint64_t>(text_[pos_] - '0');
    if (value > (UINT64_MAX - digit) / 10) return Error("number out of the range of a uint64");
    value = value * 10 + digit;
    ++pos_;
  }
  if (pos_ == start) return Error("expected an unsigned integer");
  if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E'))
    return Error("expected an unsigned integer, got a fraction or an exponent");
  return value;
}

StatusOr<bool> JsonReader::Bool() {
  SkipSpace();
  for (std::string_view word : {std::string_view("true"), std::string_view("false")}) {
    if (text_.substr(pos_, word.size()) == word) {
      pos_ += word.size();
      return word == "true";
    }
  }
  return Error("expected true or false");
}

Status JsonReader::SkipValue(int depth) {
  if (depth > 64) return Error("nested too deeply");
  SkipSpace();
  if (pos_ >= text_.size()) return Error("expected a value");
  char c = text_[pos_];
  if (c == '"') return String().status();
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    ++pos_;
    if (Consume(close)) return Status::Ok();
    for (;;) {
      if (c == '{') {
        if (auto key = String(); !key.ok()) return key.status();
        if (!Consume(':')) return Error("expected ':'");
      }
      if (Status st = SkipValue(depth + 1); !st.ok()) return st;
      if (Consume(close)) return Status::Ok();
      if (!Consume(',')) return Error("expected ',' or '" + std::string(1, close) + "'");
    }
  }
  size_t start = pos_;
  while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '-' ||
                                 text_[pos_] == '+' || text_[pos_] == '.'))
    ++pos_;
  std::string_view word = text_.substr(start, pos_ - start);
  if (word.empty()) return Error("expected a value");
  if (word == "true" || word == "false" || word == "null") return Status::Ok();
  if (std::isdigit(static_cast<unsigned char>(word[0])) || word[0] == '-') return Status::Ok();
  return Error("expected a value");
}

StatusOr<uint32_t> JsonReader::Hex4() {
  if (pos_ + 4 > text_.size()) return Error("short \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    char h = text_[pos_++];
    v <<= 4;
    if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
    else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
    else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
    else return Error("bad \\u escape");
  }
  return v;
}

void JsonReader::AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace praefect::storagenode
