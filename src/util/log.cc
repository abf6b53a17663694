#include "util/log.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "util/strings.h"

namespace shale {
namespace {
LogLevel g_level = LogLevel::kWarn;
void Emit(const char* prefix, std::string_view msg) {
  fprintf(stderr, "shale: %s%.*s\n", prefix, static_cast<int>(msg.size()), msg.data());
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level = level; }
LogLevel GetLogLevel() { return g_level; }
void LogError(std::string_view msg) { Emit("", msg); }
void LogWarn(std::string_view msg) {
  if (g_level >= LogLevel::kWarn) Emit("warning: ", msg);
}
void LogInfo(std::string_view msg) {
  if (g_level >= LogLevel::kInfo) Emit("", msg);
}
void LogDebug(std::string_view msg) {
  if (g_level >= LogLevel::kDebug) Emit("debug: ", msg);
}

bool Progress::Enabled() {
  static const bool enabled = isatty(STDERR_FILENO) && getenv("SHALE_NO_PROGRESS") == nullptr;
  return enabled;
}

Progress::Progress(std::string label, int64_t total) : label_(std::move(label)), total_(total) {}
Progress::~Progress() {
  if (drawn_ && !done_) fprintf(stderr, "\n");
}

void Progress::Update(int64_t done) {
  if (!Enabled()) return;
  int64_t now = NowUnixNanos();
  if (drawn_ && now - last_draw_ns_ < 100000000) return;  // at most 10 redraws a second
  last_draw_ns_ = now;
  drawn_ = true;
  if (total_ > 0)
    fprintf(stderr, "\r\033[K%s  %s / %s", label_.c_str(), HumanSize(done).c_str(),
            HumanSize(total_).c_str());
  else
    fprintf(stderr, "\r\033[K%s  %s", label_.c_str(), HumanSize(done).c_str());
  fflush(stderr);
}

void Progress::Done() {
  if (!Enabled() || done_) return;
  done_ = true;
  fprintf(stderr, "\r\033[K%s  done\n", label_.c_str());
}

}  // namespace shale
