#include "util/strings.h"

#include <sys/random.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <cstdio>
#include <ctime>

namespace shale {

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); i++) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view x) {
  return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}

std::string HumanSize(int64_t bytes) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000.0 && u < 5) {
    v /= 1000.0;
    u++;
  }
  char buf[32];
  // docker: 3 significant digits (%.4g then trimmed); keep it simple and close.
  snprintf(buf, sizeof buf, "%.3g%s", v, kUnits[u]);
  return buf;
}

std::string HumanAgo(int64_t then, int64_t now) {
  int64_t d = now - then;
  auto fmt = [](int64_t n, const char* unit) {
    char buf[64];
    snprintf(buf, sizeof buf, "%lld %s%s ago", (long long)n, unit, n == 1 ? "" : "s");
    return std::string(buf);
  };
  if (d < 1) return "Less than a second ago";
  if (d < 60) return fmt(d, "second");
  if (d < 3600) return d < 120 ? "About a minute ago" : fmt(d / 60, "minute");
  if (d < 86400 * 2) return d < 7200 ? "About an hour ago" : fmt(d / 3600, "hour");
  if (d < 86400 * 7 * 2) return fmt(d / 86400, "day");
  if (d < 86400 * 30 * 3) return fmt(d / (86400 * 7), "week");
  if (d < 86400 * 365 * 2) return fmt(d / (86400 * 30), "month");
  return fmt(d / (86400 * 365), "year");
}

Result<uint64_t> ParseUint(std::string_view s, uint64_t max, std::string_view what) {
  auto bad = [&](std::string why) {
    return Error(Errc::kInvalidArgument,
                 std::string(what) + " \"" + std::string(s.substr(0, 64)) + "\" " + why);
  };
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos)
    return bad("is not a number");
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && v > max))
    return bad("is out of range (at most " + std::to_string(max) + ")");
  if (ec != std::errc() || ptr != s.data() + s.size()) return bad("is not a number");
  return v;
}

Result<int64_t> ParseInt(std::string_view s, int64_t min, int64_t max, std::string_view what) {
  auto bad = [&](std::string why) {
    return Error(Errc::kInvalidArgument,
                 std::string(what) + " \"" + std::string(s.substr(0, 64)) + "\" " + why);
  };
  bool neg = !s.empty() && s[0] == '-';
  std::string_view digits = neg ? s.substr(1) : s;
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
    return bad("is not a number");
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && (v < min || v > max)))
    return bad("is out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")");
  if (ec != std::errc() || ptr != s.data() + s.size()) return bad("is not a number");
  return v;
}

// docker's units.RAMInBytes: "512m", "1.5g", "100" (bytes); binary units. Exact integer
// arithmetic: a value past int64 is "too large", never wrapped.
Result<int64_t> ParseSize(std::string_view s) {
  std::string_view t = Trim(s);
  auto bad = [&](std::string why) {
    return Error(Errc::kInvalidArgument,
                 "invalid size \"" + std::string(s.substr(0, 64)) + "\": " + why);
  };
  if (t.empty()) return Error(Errc::kInvalidArgument, "empty size");
  size_t i = 0;
  while (i < t.size() && isdigit(static_cast<unsigned char>(t[i]))) i++;
  std::string_view whole = t.substr(0, i), frac;
  if (i < t.size() && t[i] == '.') {
    size_t j = ++i;
    while (i < t.size() && isdigit(static_cast<unsigned char>(t[i]))) i++;
    frac = t.substr(j, i - j);
  }
  if (whole.empty() && frac.empty()) return bad("not a number");
  std::string unit(t.substr(i));
  for (auto& c : unit) c = static_cast<char>(tolower(c));
  if (!unit.empty() && unit.back() == 'b' && unit.size() > 1) unit.pop_back();
  if (unit == "ib") unit = "";
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
  int64_t mul = 1;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k") mul = int64_t{1} << 10;
  else if (unit == "m") mul = int64_t{1} << 20;
  else if (unit == "g") mul = int64_t{1} << 30;
  else if (unit == "t") mul = int64_t{1} << 40;
  else if (unit == "p") mul = int64_t{1} << 50;
  else return bad("unknown unit");
  const std::string too_large = "too large (at most " +
                                std::to_string(std::numeric_limits<int64_t>::max()) + " bytes)";
  uint64_t w = 0;
  if (!whole.empty()) {
    auto [p, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), w);
    if (ec != std::errc()) return bad(too_large);
  }
  if (w > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / mul)) return bad(too_large);
  int64_t v = static_cast<int64_t>(w) * mul;
  // Up to 9 fraction digits, as a part of `mul`.
  if (frac.size() > 9) frac = frac.substr(0, 9);
  if (!frac.empty()) {
    uint64_t f = 0, scale = 1;
    for (char c : frac) {
      f = f * 10 + static_cast<uint64_t>(c - '0');
      scale *= 10;
    }
    // mul <= 2^50 and f < 10^9: compute in 128 bits.
    __int128 add = static_cast<__int128>(f) * mul / scale;
    if (static_cast<__int128>(v) + add > std::numeric_limits<int64_t>::max()) return bad(too_large);
    v += static_cast<int64_t>(add);
  }
  return v;
}

std::string FormatRfc3339Nano(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  long frac = static_cast<long>(ns % 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

int64_t NowUnixNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Result<int64_t> ParseRfc3339(std::string_view s) {
  int Y, M, D, h, m, sec;
  char rest[64] = {0};
  std::string str(s);
  if (sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%63s", &Y, &M, &D, &h, &m, &sec, rest) < 6)
    return Error(Errc::kInvalidArgument, "invalid time \"" + str + "\"");
  struct tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  int64_t secs = timegm(&tm);
  int64_t nanos = 0;
  const char* p = rest;
  if (*p == '.') {
    p++;
    int digits = 0;
    while (isdigit(static_cast<unsigned char>(*p))) {
      if (digits < 9) {
        nanos = nanos * 10 + (*p - '0');
        digits++;
      }
      p++;
    }
    while (digits++ < 9) nanos *= 10;
  }
  if (*p == '+' || *p == '-') {
    int oh = 0, om = 0;
    sscanf(p + 1, "%2d:%2d", &oh, &om);
    int64_t off = oh * 3600 + om * 60;
    secs += (*p == '+') ? -off : off;
  }
  return secs * 1000000000 + nanos;
}

std::string RandomHexId(size_t len) {
  std::string bytes((len + 1) / 2, '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n > 0) got += n;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  out.resize(len);
  return out;
}

}  // namespace shale
