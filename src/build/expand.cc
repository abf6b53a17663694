#include "build/expand.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace shale::build {
namespace {

constexpr std::string_view kPredefined[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY",
                                            "https_proxy", "FTP_PROXY", "ftp_proxy",
                                            "NO_PROXY",   "no_proxy",   "ALL_PROXY",
                                            "all_proxy"};

Error Fail(const Instruction& ins, std::string_view message) {
  return Error(Errc::kInvalidArgument, "Dockerfile:" + std::to_string(ins.line) + ": " +
                                           std::string(message) + ", in: " + ins.original);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Decimal without sign, whole string, at most `max`.
bool ParseUint(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && *out <= max;
}

// EXPOSE items as docker's nat.ParsePortSpecs reads them: PORT[-END][/PROTO], each port
// of a range its own item.
Result<std::vector<std::string>> ParsePorts(const Instruction& ins, const std::string& spec) {
  std::string_view s = spec;
  std::string proto = "tcp";
  if (size_t slash = s.find('/'); slash != std::string_view::npos) {
    proto = Lower(s.substr(slash + 1));
    s = s.substr(0, slash);
    if (proto != "tcp" && proto != "udp" && proto != "sctp") {
      return Fail(ins, "invalid proto: " + proto);
    }
  }
  std::string_view a = s, b = s;
  if (size_t dash = s.find('-'); dash != std::string_view::npos) {
    a = s.substr(0, dash);
    b = s.substr(dash + 1);
  }
  uint64_t start = 0, end = 0;
  if (!ParseUint(a, 65535, &start) || !ParseUint(b, 65535, &end) || end < start) {
    return Fail(ins, "invalid containerPort: " + std::string(s));
  }
  std::vector<std::string> out;
  for (uint64_t p = start; p <= end; ++p) out.push_back(std::to_string(p) + "/" + proto);
  return out;
}

Result<void> CheckSignal(const Instruction& ins, const std::string& sig) {
  uint64_t n = 0;
  if (ParseUint(sig, UINT32_MAX, &n)) {
    if (n == 0) return Fail(ins, "Invalid signal: " + sig);
    return Ok();
  }
  static constexpr std::string_view kNames[] = {
      "ABRT", "ALRM", "BUS",  "CHLD", "CLD",    "CONT", "FPE",  "HUP",    "ILL",  "INT",
      "IO",   "IOT",  "KILL", "PIPE", "POLL",   "PROF", "PWR",  "QUIT",   "SEGV", "STKFLT",
      "STOP", "SYS",  "TERM", "TRAP", "TSTP",   "TTIN", "TTOU", "UNUSED", "URG",  "USR1",
      "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX"};
  std::string up = sig;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string_view name = up;
  if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
  for (auto k : kNames) {
    if (name == k) return Ok();
  }
  // RTMIN+n / RTMAX-n, n in 1..15, as docker's SignalMap lists them.
  for (std::string_view base : {"RTMIN+", "RTMAX-"}) {
    if (name.substr(0, base.size()) == base) {
      uint64_t k = 0;
      if (ParseUint(name.substr(base.size()), 15, &k) && k >= 1) return Ok();
    }
  }
  return Fail(ins, "Invalid signal: " + sig);
}

Result<void> CheckChmod(const Instruction& ins, const std::string& v) {
  bool ok = !v.empty() && v.size() <= 5;
  uint64_t mode = 0;
  for (char c : v) {
    ok = ok && c >= '0' && c <= '7';
    mode = mode * 8 + static_cast<uint64_t>(c - '0');
  }
  if (!ok || mode > 07777) return Fail(ins, "invalid chmod parameter: " + v + " (octal mode expected)");
  return Ok();
}

}  // namespace

bool IsPredefinedArg(std::string_view name) {
  return std::find(std::begin(kPredefined), std::end(kPredefined), name) != std::end(kPredefined);
}

Result<VarMap> ResolveMetaArgs(const Dockerfile& df, const BuildArgs& build_args) {
  Lexer lex(df.escape);
  VarMap meta;
  for (const auto& ins : df.meta_args) {
    VarMap before = meta;
    for (const auto& kv : ins.pairs) {
      std::string key = TRY(lex.ProcessWord(kv.key, before).Wrap(
          "Dockerfile:" + std::to_string(ins.line)));
      if (auto it = build_args.find(key); it != build_args.end()) {
        meta[key] = it->second;
      } else if (kv.value) {
        auto v = lex.ProcessWord(*kv.value, before);
        if (!v) return Fail(ins, v.error().message());
        meta[key] = *v;
      }
    }
  }
  return meta;
}

Result<ExpandedFrom> ExpandFrom(const Dockerfile& df, size_t i, const VarMap& meta) {
  Lexer lex(df.escape);
  const Stage& st = df.stages.at(i);
  ExpandedFrom out;
  auto base = lex.ProcessWord(st.base, meta);
  if (!base) return Fail(st.from, base.error().message());
  if (base->empty()) return Fail(st.from, "base name (" + st.base + ") should not be blank");
  out.base = *base;
  out.name = st.name;
  auto platform = lex.ProcessWord(st.platform, meta);
  if (!platform) return Fail(st.from, platform.error().message());
  out.platform = *platform;
  return out;
}

Result<std::vector<size_t>> StagesNeeded(const Dockerfile& df, std::string_view target,
                                         const VarMap& meta) {
  size_t want = df.stages.size() - 1;
  if (!target.empty()) {
    std::string t = Lower(target);
    bool found = false;
    for (size_t i = 0; i < df.stages.size(); ++i) {
      if (df.stages[i].name == t) {
        want = i;
        found = true;
      }
    }
    if (!found) {
      return Error(Errc::kInvalidArgument,
                   "failed to reach build target " + std::string(target) + " in Dockerfile");
    }
  }
  std::vector<bool> need(df.stages.size(), false);
  std::vector<size_t> todo = {want};
  while (!todo.empty()) {
    size_t i = todo.back();
    todo.pop_back();
    if (need[i]) continue;
    need[i] = true;
    ExpandedFrom from = TRY(ExpandFrom(df, i, meta));
    std::string base = Lower(from.base);
    for (size_t j = 0; j < i; ++j) {
      if (!df.stages[j].name.empty() && df.stages[j].name == base) todo.push_back(j);
    }
    for (const auto& ins : df.stages[i].instructions) {
      auto it = ins.flags.find("from");
      if (ins.command != Command::kCopy || it == ins.flags.end()) continue;
      if (it->second.find('$') != std::string::npos) {
        // Named through a variable of the stage: keep every earlier stage to be safe.
        for (size_t j = 0; j < i; ++j) todo.push_back(j);
      } else if (auto j = FindStage(df, it->second, i)) {
        todo.push_back(*j);
      }
    }
  }
  std::vector<size_t> out;
  for (size_t i = 0; i < need.size(); ++i) {
    if (need[i]) out.push_back(i);
  }
  return out;
}

StageExpander::StageExpander(const Dockerfile& df, const BuildArgs& build_args,
                             const VarMap& meta, std::vector<std::string> base_env)
    : df_(df), build_args_(build_args), meta_(meta), lex_(df.escape), env_(std::move(base_env)) {}

void StageExpander::SetEnv(const std::string& k, const std::string& v) {
  for (auto& e : env_) {
    if (e.compare(0, k.size() + 1, k + "=") == 0) {
      e = k + "=" + v;
      return;
    }
  }
  env_.push_back(k + "=" + v);
}

std::map<std::string, std::string> StageExpander::ArgsInEffect() const {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : declared_) {
    if (v) out[k] = *v;
  }
  for (const auto& [k, v] : build_args_) {
    if (IsPredefinedArg(k) && !declared_.count(k)) out[k] = v;
  }
  return out;
}

VarMap StageExpander::Vars() const {
  VarMap vars;
  for (const auto& [k, v] : ArgsInEffect()) vars[k] = v;
  // ENV wins over an ARG of the same name.
  for (const auto& e : env_) {
    size_t eq = e.find('=');
    vars[e.substr(0, eq)] = eq == std::string::npos ? "" : e.substr(eq + 1);
  }
  return vars;
}

Result<ExpandedInstruction> StageExpander::Expand(const Instruction& ins) {
  ExpandedInstruction out;
  out.source = &ins;
  out.command = ins.command;
  const VarMap vars = Vars();
  auto word = [&](const std::string& w) -> Result<std::string> {
    auto r = lex_.ProcessWord(w, vars);
    if (!r) return Fail(ins, r.error().message());
    return r;
  };
  switch (ins.command) {
    case Command::kFrom:
      return Fail(ins, "FROM is expanded with ExpandFrom");
    case Command::kRun: {
      out.words = ins.args;
      std::map<std::string, std::string> env_keys;
      for (const auto& e : env_) env_keys[e.substr(0, e.find('='))] = "";
      out.run_env = env_;
      for (const auto& [k, v] : ArgsInEffect()) {
        if (env_keys.count(k)) continue;
        out.run_env.push_back(k + "=" + v);
        if (!IsPredefinedArg(k) || declared_.count(k)) out.history_args.push_back(k + "=" + v);
      }
      std::sort(out.history_args.begin(), out.history_args.end());
      break;
    }
    case Command::kCmd:
    case Command::kEntrypoint:
    case Command::kShell:
    case Command::kHealthcheck:
      out.words = ins.args;
      break;
    case Command::kOnbuild:
      out.words = {ins.trigger};
      break;
    case Command::kCopy:
    case Command::kAdd:
      for (const auto& a : ins.args) out.words.push_back(TRY(word(a)));
      for (const auto& [k, v] : ins.flags) out.flags[k] = TRY(word(v));
      if (auto it = out.flags.find("chmod"); it != out.flags.end()) TRY(CheckChmod(ins, it->second));
      if (auto it = out.flags.find("from"); it != out.flags.end() && it->second.empty()) {
        return Fail(ins, "--from requires a stage name, stage index or image");
      }
      break;
    case Command::kVolume:
      for (const auto& a : ins.args) {
        std::string v = TRY(word(a));
        if (v.find_first_not_of(" \t") == std::string::npos) {
          return Fail(ins, "VOLUME specified can not be an empty string");
        }
        out.words.push_back(std::move(v));
      }
      break;
    case Command::kExpose:
      for (const auto& a : ins.args) {
        auto items = lex_.ProcessWords(a, vars);
        if (!items) return Fail(ins, items.error().message());
        for (const auto& item : *items) {
          for (auto& p : TRY(ParsePorts(ins, item))) out.words.push_back(std::move(p));
          out.expose_specs.push_back(item);
        }
      }
      break;
    case Command::kWorkdir:
    case Command::kUser:
    case Command::kMaintainer:
    case Command::kStopSignal: {
      std::string v = TRY(word(ins.args.at(0)));
      if (v.empty() && ins.command != Command::kMaintainer) {
        return Fail(ins, std::string(CommandName(ins.command)) + " expands to an empty string");
      }
      if (ins.command == Command::kStopSignal) TRY(CheckSignal(ins, v));
      out.words = {std::move(v)};
      break;
    }
    case Command::kEnv:
    case Command::kLabel:
      for (const auto& kv : ins.pairs) {
        std::string k = TRY(word(kv.key));
        if (k.empty()) return Fail(ins, std::string(CommandName(ins.command)) + " names can not be blank");
        out.pairs.push_back({std::move(k), TRY(word(kv.value.value_or("")))});
      }
      // Every pair was expanded with the values before this line (ENV a=1 b=$a sees the old a).
      if (ins.command == Command::kEnv) {
        for (const auto& kv : out.pairs) SetEnv(kv.key, *kv.value);
      }
      break;
    case Command::kArg:
      for (const auto& kv : ins.pairs) {
        std::string k = TRY(word(kv.key));
        std::optional<std::string> v;
        if (auto it = build_args_.find(k); it != build_args_.end()) {
          v = it->second;
          used_.insert(k);
        } else if (kv.value) {
          v = TRY(word(*kv.value));
        } else if (auto m = meta_.find(k); m != meta_.end()) {
          v = m->second;  // `ARG NAME` in a stage takes the meta arg's value
        }
        declared_[k] = v;
        out.pairs.push_back({k, v});
      }
      break;
  }
  return out;
}

Result<std::vector<ExpandedInstruction>> ExpandStage(const Dockerfile& df, size_t i,
                                                     const BuildArgs& build_args,
                                                     const VarMap& meta,
                                                     std::vector<std::string> base_env) {
  StageExpander ex(df, build_args, meta, std::move(base_env));
  std::vector<ExpandedInstruction> out;
  for (const auto& ins : df.stages.at(i).instructions) out.push_back(TRY(ex.Expand(ins)));
  return out;
}

std::vector<std::string> UnconsumedBuildArgs(const Dockerfile& df, const BuildArgs& given) {
  std::set<std::string> declared;
  auto add = [&](const Instruction& ins) {
    for (const auto& kv : ins.pairs) declared.insert(kv.key);
  };
  for (const auto& ins : df.meta_args) add(ins);
  for (const auto& st : df.stages) {
    for (const auto& ins : st.instructions) {
      if (ins.command == Command::kArg) add(ins);
    }
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : given) {
    if (!declared.count(k) && !IsPredefinedArg(k)) out.push_back(k);
  }
  return out;
}

}  // namespace shale::build
