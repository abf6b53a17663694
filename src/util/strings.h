// Small string, size and time helpers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace shale {

std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view Trim(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);

// "1.5GB", as docker prints sizes (decimal units, 3 significant digits).
std::string HumanSize(int64_t bytes);
// "2 hours ago", as docker prints CREATED.
std::string HumanAgo(int64_t unix_seconds, int64_t now);
// "512m", "1g", "100k", "1024" -> bytes (binary units, as docker's --memory).
Result<int64_t> ParseSize(std::string_view s);
// A decimal number of digits only (no sign, space or base prefix) that is at most `max`;
// otherwise kInvalidArgument naming `what` ("user id \"99999999999\" is out of range ...").
// Never throws, never truncates.
Result<uint64_t> ParseUint(std::string_view s, uint64_t max, std::string_view what);
// As ParseUint, allowing a leading '-' when `min` < 0.
Result<int64_t> ParseInt(std::string_view s, int64_t min, int64_t max, std::string_view what);
// Largest uid/gid accepted anywhere (runc's limit): above it ids wrap or mean "no id".
inline constexpr uint64_t kMaxId = 0x7fffffff;

// RFC 3339 with nanoseconds, UTC: "2026-11-29T07:03:29.123456789Z".
std::string FormatRfc3339Nano(int64_t unix_nanos);
int64_t NowUnixNanos();
// Parses the formats FormatRfc3339Nano and docker write. kInvalidArgument otherwise.
Result<int64_t> ParseRfc3339(std::string_view s);

// 64 random lowercase hex digits (container ids, layer cache ids).
std::string RandomHexId(size_t len = 64);

}  // namespace shale
