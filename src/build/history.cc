// Docker's config effects and history lines for each instruction (moby's classic builder,
// builder/dockerfile/dispatchers.go; only the behaviour is followed, no code is copied).
#include "build/history.h"

#include <cstdio>

#include "build/dockerignore.h"
#include "util/strings.h"

namespace shale::build {
namespace {

using nlohmann::json;

std::vector<std::string> Strings(const json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& e : j)
      if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

// exec form as written; shell form is the shell plus the text (CMD, ENTRYPOINT, RUN).
std::vector<std::string> CommandLine(const ExpandedInstruction& ins, const json& config) {
  if (ins.source && ins.source->json) return ins.words;
  std::vector<std::string> argv = ShellOf(config);
  if (!ins.words.empty()) argv.push_back(ins.words[0]);
  return argv;
}

// Go's time.Duration.String() for whole milliseconds and up ("0s", "90s" -> "1m30s",
// "1.5s", "300ms").
std::string GoDuration(int64_t ns) {
  if (ns == 0) return "0s";
  if (ns < 1000000000) {
    char b[64];
    if (ns % 1000000 == 0) {
      std::snprintf(b, sizeof b, "%lldms", static_cast<long long>(ns / 1000000));
    } else {
      std::snprintf(b, sizeof b, "%gms", static_cast<double>(ns) / 1e6);
    }
    return b;
  }
  std::string out;
  int64_t h = ns / 3600000000000LL;
  ns -= h * 3600000000000LL;
  int64_t m = ns / 60000000000LL;
  ns -= m * 60000000000LL;
  if (h) out += std::to_string(h) + "h";
  if (h || m) out += std::to_string(m) + "m";
  char b[64];
  std::snprintf(b, sizeof b, "%.9f", static_cast<double>(ns) / 1e9);
  std::string s = b;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return out + s + "s";
}

// Go's %q of a rune (HEALTHCHECK's Retries is an int formatted with %q: '\x03').
std::string GoQuoteRune(int r) {
  char b[16];
  if (r >= 0x20 && r < 0x7f && r != '\'' && r != '\\') {
    std::snprintf(b, sizeof b, "'%c'", r);
  } else if (r == '\'' || r == '\\') {
    std::snprintf(b, sizeof b, "'\\%c'", r);
  } else if (r == '\a' || r == '\b' || r == '\f' || r == '\n' || r == '\r' || r == '\t' ||
             r == '\v') {
    const char* names = "abfnrtv";
    const char codes[] = {'\a', '\b', '\f', '\n', '\r', '\t', '\v'};
    for (int i = 0; i < 7; ++i)
      if (codes[i] == r) std::snprintf(b, sizeof b, "'\\%c'", names[i]);
  } else if (r < 0x100) {
    std::snprintf(b, sizeof b, "'\\x%02x'", r);
  } else {
    std::snprintf(b, sizeof b, "'\\u%04x'", r);
  }
  return b;
}

void SetEnv(json& env, const std::string& k, const std::string& v) {
  if (!env.is_array()) env = json::array();
  for (auto& e : env)
    if (e.is_string() && StartsWith(e.get<std::string>(), k + "=")) {
      e = k + "=" + v;
      return;
    }
  env.push_back(k + "=" + v);
}

}  // namespace

std::vector<std::string> ShellOf(const json& config) {
  std::vector<std::string> sh = Strings(config.value("Shell", json()));
  if (sh.empty()) sh = {"/bin/sh", "-c"};
  return sh;
}

std::vector<std::string> RunArgs(const ExpandedInstruction& ins, const json& config) {
  return CommandLine(ins, config);
}

std::string NopCreatedBy(const json& config, std::string_view comment, bool tight) {
  return Join(ShellOf(config), " ") + (tight ? " #(nop) " : " #(nop)  ") + std::string(comment);
}

std::string RunCreatedBy(const ExpandedInstruction& ins, const json& config) {
  std::string out;
  if (!ins.history_args.empty())
    out = "|" + std::to_string(ins.history_args.size()) + " " + Join(ins.history_args, " ") + " ";
  return out + Join(RunArgs(ins, config), " ");
}

std::string CopyCreatedBy(const ExpandedInstruction& ins, const json& config,
                          std::string_view sources_id) {
  std::string comment(CommandName(ins.command));
  if (auto it = ins.flags.find("chown"); it != ins.flags.end())
    comment += " --chown=" + it->second;
  if (auto it = ins.flags.find("chmod"); it != ins.flags.end())
    comment += " --chmod=" + it->second;
  comment += " " + std::string(sources_id) + " in " + ins.words.back() + " ";
  return NopCreatedBy(config, comment, true);
}

std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char b[8];
          std::snprintf(b, sizeof b, "\\x%02x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string GoQuoteList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + GoQuote(v[i]);
  return out + "]";
}

std::string JoinWorkdir(std::string_view previous, std::string_view dir) {
  if (!dir.empty() && dir[0] == '/') return CleanPath(dir);
  std::string base = previous.empty() ? "/" : std::string(previous);
  return CleanPath(base + "/" + std::string(dir));
}

json StageConfig(const json& base_config) {
  json c = base_config.is_object() ? base_config : json::object();
  bool has_path = false;
  for (const auto& e : Strings(c.value("Env", json())))
    if (StartsWith(e, "PATH=")) has_path = true;
  if (!has_path) SetEnv(c["Env"], "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  c.erase("OnBuild");
  return c;
}

Result<ConfigChange> ApplyToConfig(const ExpandedInstruction& ins, json& config, bool* cmd_set) {
  ConfigChange out;
  std::string comment;
  switch (ins.command) {
    case Command::kEnv:
      comment = "ENV";
      for (const auto& kv : ins.pairs) {
        SetEnv(config["Env"], kv.key, kv.value.value_or(""));
        comment += " " + kv.key + "=" + kv.value.value_or("");
      }
      break;
    case Command::kLabel:
      comment = "LABEL";
      for (const auto& kv : ins.pairs) {
        if (!config["Labels"].is_object()) config["Labels"] = json::object();
        config["Labels"][kv.key] = kv.value.value_or("");
        comment += " " + kv.key + "=" + kv.value.value_or("");
      }
      break;
    case Command::kArg:
      comment = "ARG";
      for (const auto& kv : ins.pairs) {
        comment += " " + kv.key;
        if (kv.value) comment += "=" + *kv.value;
      }
      break;
    case Command::kExpose:
      comment = "EXPOSE";
      for (const auto& p : ins.words) {
        if (!config["ExposedPorts"].is_object()) config["ExposedPorts"] = json::object();
        config["ExposedPorts"][p] = json::object();
      }
      for (const auto& p : ins.expose_specs) comment += " " + p;  // as written, as docker
      break;
    case Command::kVolume:
      for (const auto& v : ins.words) {
        if (!config["Volumes"].is_object()) config["Volumes"] = json::object();
        config["Volumes"][v] = json::object();
      }
      comment = "VOLUME [" + Join(ins.words, " ") + "]";
      break;
    case Command::kUser:
      config["User"] = ins.words.at(0);
      comment = "USER " + ins.words.at(0);
      break;
    case Command::kWorkdir: {
      std::string wd = JoinWorkdir(config.value("WorkingDir", ""), ins.words.at(0));
      config["WorkingDir"] = wd;
      comment = "WORKDIR " + wd;
      break;
    }
    case Command::kStopSignal:
      config["StopSignal"] = ins.words.at(0);
      comment = "STOPSIGNAL " + ins.words.at(0);
      break;
    case Command::kCmd: {
      std::vector<std::string> cmd = CommandLine(ins, config);
      config["Cmd"] = cmd;
      if (cmd_set) *cmd_set = true;
      comment = "CMD " + GoQuoteList(cmd);
      break;
    }
    case Command::kEntrypoint: {
      std::vector<std::string> ep = CommandLine(ins, config);
      config["Entrypoint"] = ep;
      // An inherited Cmd was meant for the old entrypoint.
      if (cmd_set && !*cmd_set) config["Cmd"] = nullptr;
      comment = "ENTRYPOINT " + GoQuoteList(ep);
      break;
    }
    case Command::kShell:
      config["Shell"] = ins.words;
      comment = "SHELL [" + Join(ins.words, " ") + "]";
      break;
    case Command::kOnbuild:
      if (!config["OnBuild"].is_array()) config["OnBuild"] = json::array();
      config["OnBuild"].push_back(ins.words.at(0));
      comment = "ONBUILD " + ins.words.at(0);
      break;
    case Command::kMaintainer:
      out.author = ins.words.at(0);
      comment = "MAINTAINER " + ins.words.at(0);
      break;
    case Command::kHealthcheck: {
      const HealthConfig& h = ins.source->health.value();
      json hc = {{"Test", h.test}};
      if (h.interval_ns) hc["Interval"] = h.interval_ns;
      if (h.timeout_ns) hc["Timeout"] = h.timeout_ns;
      if (h.start_period_ns) hc["StartPeriod"] = h.start_period_ns;
      if (h.start_interval_ns) hc["StartInterval"] = h.start_interval_ns;
      if (h.retries) hc["Retries"] = h.retries;
      config["Healthcheck"] = hc;
      comment = "HEALTHCHECK &{" + GoQuoteList(h.test) + " " + GoQuote(GoDuration(h.interval_ns)) +
                " " + GoQuote(GoDuration(h.timeout_ns)) + " " +
                GoQuote(GoDuration(h.start_period_ns)) + " " +
                GoQuote(GoDuration(h.start_interval_ns)) + " " + GoQuoteRune(h.retries) + "}";
      break;
    }
    case Command::kRun:
    case Command::kCopy:
    case Command::kAdd:
    case Command::kFrom:
      return Error(Errc::kInvalidArgument,
                   std::string(CommandName(ins.command)) + " changes more than the config");
  }
  out.created_by = NopCreatedBy(config, comment, ins.command == Command::kWorkdir);
  return out;
}

}  // namespace shale::build
