#include "container/trace.h"

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "util/log.h"

namespace shale::container {
namespace {

int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace

void TracePhase(std::string_view what) {
  static const int64_t start = MonotonicNs();
  static int64_t last = start;
  if (GetLogLevel() != LogLevel::kDebug) return;
  int64_t now = MonotonicNs();
  char buf[64];
  snprintf(buf, sizeof buf, "[%8.3f ms +%.3f] ", (now - start) / 1e6, (now - last) / 1e6);
  last = now;
  LogDebug(std::string(buf) + std::string(what));
}

}  // namespace shale::container
