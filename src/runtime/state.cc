#include "runtime/state.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "util/fd.h"
#include "util/fs.h"

namespace shale::runtime {

using nlohmann::json;

std::string_view StatusName(Status s) {
  switch (s) {
    case Status::kCreating: return "creating";
    case Status::kCreated: return "created";
    case Status::kRunning: return "running";
    case Status::kPaused: return "paused";
    case Status::kStopped: return "stopped";
  }
  return "unknown";
}

// Temp file + rename, without fsync: the state lives on tmpfs (/run) by convention and means
// nothing after a crash (every process it names is gone); atomic is what readers need, and
// two fsyncs per file were most of `create`'s own time on a disk-backed --root.
Result<void> WriteStateFile(const std::string& dir, const char* name, std::string_view data) {
  std::string tmp = dir + "/." + name + ".XXXXXX";
  UniqueFd fd(mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) return Error::FromErrno(errno, "create " + tmp);
  auto w = WriteAll(fd.get(), data, tmp);
  if (!w || fchmod(fd.get(), 0600) != 0 || rename(tmp.c_str(), (dir + "/" + name).c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    if (!w) return std::move(w).error();
    return Error::FromErrno(err, "write " + dir + "/" + name);
  }
  return Ok();
}

Result<void> SaveState(const std::string& dir, const State& s) {
  json j = {{"id", s.id},           {"pid", s.pid},
            {"pidStart", s.pid_start}, {"bundle", s.bundle},
            {"rootfs", s.rootfs},   {"created", s.created},
            {"cgroupsPath", s.cgroups_path}, {"paused", s.paused},
            {"owner", s.owner},     {"annotations", s.annotations}};
  return WriteStateFile(dir, kStateFile, j.dump());
}

Result<State> LoadState(const std::string& dir) {
  std::string id = Basename(dir);
  auto data = ReadFile(dir + "/" + kStateFile);
  if (!data) {
    if (data.error().code() == Errc::kNotFound)
      return Error(Errc::kNotFound, "container " + id + " does not exist");
    return std::move(data).error();
  }
  State s;
  try {
    json j = json::parse(*data);
    s.id = j.at("id").get<std::string>();
    s.pid = j.at("pid").get<pid_t>();
    s.pid_start = j.at("pidStart").get<uint64_t>();
    s.bundle = j.value("bundle", "");
    s.rootfs = j.value("rootfs", "");
    s.created = j.value("created", "");
    s.cgroups_path = j.value("cgroupsPath", "");
    s.paused = j.value("paused", false);
    s.owner = j.value("owner", "");
    if (auto a = j.find("annotations"); a != j.end() && a->is_object()) s.annotations = *a;
  } catch (const json::exception& e) {
    return Error(Errc::kCorrupt, dir + "/" + kStateFile + ": " + e.what());
  }
  return s;
}

Result<oci::RuntimeSpec> LoadSpec(const std::string& dir) {
  std::string data = TRY(ReadFile(dir + "/" + kSpecFile));
  json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(Errc::kCorrupt, dir + "/" + kSpecFile + ": not JSON");
  return oci::RuntimeSpecFromJson(j);
}

uint64_t ProcessStartTime(pid_t pid) {
  if (pid <= 0) return 0;
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses; fields count from the
  // last ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return 0;
  std::string_view rest = std::string_view(*stat).substr(close + 2);
  if (rest[0] == 'Z' || rest[0] == 'X') return 0;
  // rest starts at field 3 (state); start time is field 22.
  size_t pos = 0;
  for (int field = 3; field < 22; ++field) {
    pos = rest.find(' ', pos);
    if (pos == std::string_view::npos) return 0;
    ++pos;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(rest.data() + pos, rest.data() + rest.size(), v);
  if (ec != std::errc()) return 0;
  return v;
}

Status CurrentStatus(const std::string& dir, const State& s) {
  if (s.pid <= 0 || ProcessStartTime(s.pid) != s.pid_start) return Status::kStopped;
  if (PathExists(dir + "/" + kExecFifo)) return Status::kCreated;
  return s.paused ? Status::kPaused : Status::kRunning;
}

json OciState(const State& s, Status status) {
  json j = {{"ociVersion", "1.1.0"},
            {"id", s.id},
            {"status", std::string(StatusName(status))},
            {"pid", status == Status::kStopped ? 0 : s.pid},
            {"bundle", s.bundle},
            {"rootfs", s.rootfs},
            {"created", s.created},
            {"owner", s.owner}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return j;
}

std::string NowRfc3339() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof(buf) - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

}  // namespace shale::runtime
