// Messages for people: errors and warnings on stderr, progress only on a terminal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shale {

enum class LogLevel { kError, kWarn, kInfo, kDebug };
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogError(std::string_view msg);
void LogWarn(std::string_view msg);
void LogInfo(std::string_view msg);
void LogDebug(std::string_view msg);

// One line of progress on stderr, redrawn in place; silent unless stderr is a terminal.
// "Loading layer 3f1c2a…  42.1MB / 120MB"
class Progress {
 public:
  explicit Progress(std::string label, int64_t total = -1);
  ~Progress();
  void Update(int64_t done);
  void Done();
  static bool Enabled();

 private:
  std::string label_;
  int64_t total_;
  int64_t last_draw_ns_ = 0;
  bool drawn_ = false;
  bool done_ = false;
};

}  // namespace shale
