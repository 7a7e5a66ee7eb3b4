#include "common/duration.h"

#include <cstdint>
#include <limits>

namespace praefect {
namespace {

constexpr uint64_t kNs = 1;
constexpr uint64_t kUs = 1000 * kNs;
constexpr uint64_t kMs = 1000 * kUs;
constexpr uint64_t kS = 1000 * kMs;
constexpr uint64_t kM = 60 * kS;
constexpr uint64_t kH = 60 * kM;

// Returns the unit's size in nanoseconds, or 0 when `unit` is not one.
uint64_t UnitSize(std::string_view unit) {
  if (unit == "ns") return kNs;
  if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") return kUs;
  if (unit == "ms") return kMs;
  if (unit == "s") return kS;
  if (unit == "m") return kM;
  if (unit == "h") return kH;
  return 0;
}

Status Bad(std::string_view text, std::string_view why) {
  std::string msg = "invalid duration \"";
  msg += text;
  msg += "\": ";
  msg += why;
  msg += " (expected Go duration syntax such as \"30s\", \"5m\", \"1m30s\", \"72h\" or \"0\")";
  return InvalidArgument(std::move(msg));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

StatusOr<Duration> ParseGoDuration(std::string_view text) {
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return Duration(0);
  if (s.empty()) return Bad(text, "it is empty");

  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t total = 0;
  while (!s.empty()) {
    // Integer part.
    uint64_t whole = 0;
    size_t i = 0;
    bool overflow = false;
    while (i < s.size() && IsDigit(s[i])) {
      if (whole > (kMax - (s[i] - '0')) / 10) overflow = true;
      if (!overflow) whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
      ++i;
    }
    if (overflow) return Bad(text, "it is too large");
    bool had_whole = i > 0;
    // Fraction part: keep up to 18 digits, which is more precision than
    // nanoseconds of any unit need.
    uint64_t frac = 0;
    uint64_t scale = 1;
    bool had_frac = false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && IsDigit(s[i])) {
        had_frac = true;
        if (scale < 1000000000000000000ULL) {
          frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
          scale *= 10;
        }
        ++i;
      }
    }
    if (!had_whole && !had_frac) return Bad(text, "a number is missing");
    size_t unit_start = i;
    while (i < s.size() && !IsDigit(s[i]) && s[i] != '.') ++i;
    std::string_view unit = s.substr(unit_start, i - unit_start);
    if (unit.empty()) return Bad(text, "a unit is missing after a number");
    uint64_t size = UnitSize(unit);
    if (size == 0) {
      std::string why = "unknown unit \"";
      why += unit;
      why += "\"";
      return Bad(text, why);
    }
    if (whole > kMax / size) return Bad(text, "it is too large");
    uint64_t value = whole * size;
    if (frac > 0) {
      // frac/scale of one unit, computed without overflowing.
      long double part = static_cast<long double>(frac) * static_cast<long double>(size) /
                         static_cast<long double>(scale);
      value += static_cast<uint64_t>(part);
    }
    if (value > kMax - total) return Bad(text, "it is too large");
    total += value;
    s.remove_prefix(i);
  }
  int64_t signed_total = static_cast<int64_t>(total);
  return Duration(negative ? -signed_total : signed_total);
}

namespace {

// Appends v / unit with up to `digits` fractional digits, trailing zeros trimmed.
void AppendFraction(std::string& out, uint64_t v, uint64_t unit, int digits) {
  out += std::to_string(v / unit);
  uint64_t rem = v % unit;
  if (rem == 0) return;
  std::string frac(static_cast<size_t>(digits), '0');
  for (int k = digits - 1; k >= 0; --k) {
    frac[static_cast<size_t>(k)] = static_cast<char>('0' + rem % 10);
    rem /= 10;
  }
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  out += '.';
  out += frac;
}

}  // namespace

std::string FormatGoDuration(Duration d) {
  int64_t n = d.count();
  if (n == 0) return "0s";
  std::string out;
  uint64_t u;
  if (n < 0) {
    out += '-';
    u = static_cast<uint64_t>(-(n + 1)) + 1;
  } else {
    u = static_cast<uint64_t>(n);
  }
  if (u < kUs) {
    out += std::to_string(u);
    out += "ns";
  } else if (u < kMs) {
    AppendFraction(out, u, kUs, 3);
    out += "\xC2\xB5s";
  } else if (u < kS) {
    AppendFraction(out, u, kMs, 6);
    out += "ms";
  } else {
    if (u >= kH) {
      out += std::to_string(u / kH);
      out += 'h';
      u %= kH;
      out += std::to_string(u / kM);
      out += 'm';
      u %= kM;
    } else if (u >= kM) {
      out += std::to_string(u / kM);
      out += 'm';
      u %= kM;
    }
    AppendFraction(out, u, kS, 9);
    out += 's';
  }
  return out;
}

}  // namespace praefect
