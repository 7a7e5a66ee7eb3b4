#include "datastore/repositories_updates.h"

#include <cctype>
#include <cstdint>
#include <optional>

namespace praefect::datastore {
namespace {

// Just enough JSON for the payload: strings (all escapes), arrays, objects,
// and skipping any other value. Each method returns false on bad input and
// leaves the reason in error_.
class Reader {
 public:
  explicit Reader(std::string_view text) : s_(text) {}

  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ == s_.size();
  }
  // Consumes `c` (after spaces) when it is next.
  bool Take(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Expect(char c) { return Take(c) || Fail(std::string("expected '") + c + "'"); }
  // Consumes the word `w` (after spaces) when it is next.
  bool TakeWord(std::string_view w) {
    SkipSpace();
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }

  bool String(std::string* out) {
    if (!Expect('"')) return false;
    out->clear();
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return Fail("unescaped control character in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case '"': case '\\': case '/': out->push_back(e); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00) {  // a surrogate pair
            uint32_t low = 0;
            if (!(Take('\\') && pos_ < s_.size() && s_[pos_++] == 'u' && Hex4(&low) && low >= 0xdc00 &&
                  low < 0xe000)) {
              return Fail("lone UTF-16 surrogate");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return Fail("lone UTF-16 surrogate");
          }
          AppendUtf8(out, cp);
          break;
        }
        default: return Fail("unknown escape");
      }
    }
    return Fail("unterminated string");
  }

  // Any value, discarded.
  bool SkipValue(int depth = 0) {
    if (depth > 32) return Fail("nesting deeper than 32");
    SkipSpace();
    if (pos_ >= s_.size()) return Fail("expected a value");
    char c = s_[pos_];
    std::string ignored;
    if (c == '"') return String(&ignored);
    if (c == '[' || c == '{') {
      char close = c == '[' ? ']' : '}';
      ++pos_;
      if (Take(close)) return true;
      do {
        if (c == '{' && !(String(&ignored) && Expect(':'))) return false;
        if (!SkipValue(depth + 1)) return false;
      } while (Take(','));
      return Expect(close);
    }
    // A number, true, false or null: its characters, checked loosely.
    size_t start = pos_;
    while (pos_ < s_.size() && (isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '-' ||
                                s_[pos_] == '+' || s_[pos_] == '.')) {
      ++pos_;
    }
    return pos_ > start || Fail("expected a value");
  }

  bool Fail(std::string what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(pos_);
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  bool Hex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return Fail("expected four hex digits after \\u");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else return Fail("expected four hex digits after \\u");
    }
    *out = v;
    return true;
  }
  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

bool ParseObject(Reader& r, ChangedRepositories* out) {
  if (!r.Expect('{')) return false;
  bool have_vs = false, have_paths = false;
  if (!r.Take('}')) {
    do {
      std::string key;
      if (!r.String(&key) || !r.Expect(':')) return false;
      if (key == "virtual_storage") {
        if (!r.String(&out->virtual_storage)) return false;
        have_vs = true;
      } else if (key == "relative_paths") {
        have_paths = true;
        // null: too many to name (migration 0005), every repository of the
        // virtual storage may have changed.
        if (r.TakeWord("null")) {
          out->all = true;
          continue;
        }
        if (!r.Expect('[')) return false;
        if (!r.Take(']')) {
          do {
            std::string path;
            if (!r.String(&path)) return false;
            out->relative_paths.push_back(std::move(path));
          } while (r.Take(','));
          if (!r.Expect(']')) return false;
        }
      } else if (!r.SkipValue()) {
        return false;
      }
    } while (r.Take(','));
    if (!r.Expect('}')) return false;
  }
  if (!have_vs) return r.Fail("object without \"virtual_storage\"");
  if (!have_paths) return r.Fail("object without \"relative_paths\"");
  return true;
}

}  // namespace

StatusOr<std::vector<ChangedRepositories>> ParseRepositoriesUpdates(std::string_view payload) {
  Reader r(payload);
  std::vector<ChangedRepositories> out;
  bool ok = r.Expect('[');
  if (ok && !r.Take(']')) {
    do {
      ChangedRepositories c;
      ok = ParseObject(r, &c);
      if (ok) out.push_back(std::move(c));
    } while (ok && r.Take(','));
    ok = ok && r.Expect(']');
  }
  if (ok && !r.AtEnd()) ok = r.Fail("trailing data");
  if (!ok) {
    return InvalidArgument("cannot parse a repositories_updates notification (a JSON array of "
                           "{\"virtual_storage\", \"relative_paths\"} objects, sent by the triggers of "
                           "migration 0002): " + r.error());
  }
  return out;
}

}  // namespace praefect::datastore
