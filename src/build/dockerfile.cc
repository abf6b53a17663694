#include "build/dockerfile.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace shale::build {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return s;
}
std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}
std::string_view TrimBoth(std::string_view s) { return TrimRight(TrimLeft(s)); }
std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
bool IsComment(std::string_view line) {
  line = TrimLeft(line);
  return !line.empty() && line.front() == '#';
}

struct CommandInfo {
  std::string_view name;
  Command command;
};
constexpr CommandInfo kCommands[] = {
    {"ADD", Command::kAdd},           {"ARG", Command::kArg},
    {"CMD", Command::kCmd},           {"COPY", Command::kCopy},
    {"ENTRYPOINT", Command::kEntrypoint}, {"ENV", Command::kEnv},
    {"EXPOSE", Command::kExpose},     {"FROM", Command::kFrom},
    {"HEALTHCHECK", Command::kHealthcheck}, {"LABEL", Command::kLabel},
    {"MAINTAINER", Command::kMaintainer}, {"ONBUILD", Command::kOnbuild},
    {"RUN", Command::kRun},           {"SHELL", Command::kShell},
    {"STOPSIGNAL", Command::kStopSignal}, {"USER", Command::kUser},
    {"VOLUME", Command::kVolume},     {"WORKDIR", Command::kWorkdir},
};

// Parser directives: only these end nothing when seen at the top (buildkit's list).
const std::set<std::string, std::less<>> kDirectives = {"syntax", "escape", "check"};

struct Directives {
  char escape = '\\';
  std::string syntax;
  bool done = false;
  std::set<std::string, std::less<>> seen;
};

// Matches `#\s*name\s*=\s*value\s*` (buildkit's reDirective). Returns false if not one.
bool MatchDirective(std::string_view line, std::string* key, std::string* value) {
  if (line.empty() || line[0] != '#') return false;
  line.remove_prefix(1);
  line = TrimLeft(line);
  size_t i = 0;
  if (i >= line.size() || !std::isalpha(static_cast<unsigned char>(line[i]))) return false;
  while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i]))) ++i;
  *key = Lower(line.substr(0, i));
  line = TrimLeft(line.substr(i));
  if (line.empty() || line[0] != '=') return false;
  line = TrimBoth(line.substr(1));
  if (line.empty()) return false;
  *value = std::string(line);
  return true;
}

// Words split on unquoted whitespace with quotes and escapes kept in the text (buildkit's
// parseWords): ENV/LABEL/ARG keep their quotes until expansion removes them.
std::vector<std::string> RawWords(std::string_view rest, char escape) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false, blank_ok = false;
  char quote = 0;
  for (size_t pos = 0; pos < rest.size(); ++pos) {
    char ch = rest[pos];
    if (quote == 0) {
      if (IsSpace(ch)) {
        if (in_word && (blank_ok || !word.empty())) words.push_back(word);
        word.clear();
        in_word = blank_ok = false;
        continue;
      }
      in_word = true;
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
      } else if (ch == escape) {
        if (pos + 1 == rest.size()) continue;
        word += ch;
        ch = rest[++pos];
      }
      word += ch;
    } else {
      if (ch == quote) {
        quote = 0;
      } else if (ch == escape && quote != '\'') {
        if (pos + 1 == rest.size()) continue;
        word += ch;
        ch = rest[++pos];
      }
      word += ch;
    }
  }
  if (in_word && (blank_ok || !word.empty())) words.push_back(word);
  return words;
}

// `--name=value` words at the start of the arguments (buildkit's extractBuilderFlags):
// quotes in a flag are removed, "--" alone ends the flags. Returns the rest of the line.
std::string_view ExtractFlags(std::string_view line, std::vector<std::string>* flags) {
  size_t pos = 0;
  for (;;) {
    while (pos < line.size() && IsSpace(line[pos])) ++pos;
    if (pos + 1 >= line.size() || line[pos] != '-' || line[pos + 1] != '-') {
      return line.substr(pos);
    }
    std::string word;
    char quote = 0;
    bool blank_ok = false;
    for (; pos < line.size(); ++pos) {
      char ch = line[pos];
      if (quote == 0 && IsSpace(ch)) break;
      if (quote == 0 && (ch == '\'' || ch == '"')) {
        quote = ch;
        blank_ok = true;
        continue;
      }
      if (quote != 0 && ch == quote) {
        quote = 0;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) continue;
        ch = line[++pos];
      }
      word += ch;
    }
    if (word == "--") return TrimLeft(line.substr(pos));
    if (blank_ok || !word.empty()) flags->push_back(word);
  }
}

std::vector<std::string> SplitWhitespace(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i]) && s[i] != '\n') ++i;
    size_t start = i;
    while (i < s.size() && !(IsSpace(s[i]) && s[i] != '\n')) ++i;
    if (i > start) out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

enum class JsonResult { kArray, kNotJson, kNotStrings };

JsonResult ParseJsonArray(std::string_view rest, std::vector<std::string>* out) {
  rest = TrimLeft(rest);
  if (rest.empty() || rest[0] != '[') return JsonResult::kNotJson;
  auto j = nlohmann::json::parse(rest, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return JsonResult::kNotJson;
  out->clear();
  for (const auto& e : j) {
    if (!e.is_string()) return JsonResult::kNotStrings;
    out->push_back(e.get<std::string>());
  }
  return JsonResult::kArray;
}

// A word that opens a heredoc as buildkit reads one: optional fd digits, "<<", "-", a name.
bool IsHeredocWord(std::string_view w) {
  size_t i = 0;
  while (i < w.size() && std::isdigit(static_cast<unsigned char>(w[i]))) ++i;
  if (w.substr(i, 2) != "<<") return false;
  i += 2;
  if (i < w.size() && w[i] == '-') ++i;
  std::string_view name = TrimLeft(w.substr(i));
  return !name.empty() && name.find('<') == std::string_view::npos;
}

class Parser {
 public:
  explicit Parser(std::string_view name) : name_(name) {}

  Error Fail(int line, std::string_view message, std::string_view text) const {
    std::string m = std::string(name_) + ":" + std::to_string(line) + ": " + std::string(message);
    if (!text.empty()) m += ", in: " + std::string(text);
    return Error(Errc::kInvalidArgument, std::move(m));
  }

  // One logical line -> instruction (buildkit's newNodeFromLine + instructions.Parse).
  Result<Instruction> ParseInstruction(std::string_view line, int first, int last,
                                       const Directives& d) {
    Instruction ins;
    ins.line = first;
    ins.end_line = last;
    ins.original = std::string(TrimBoth(line));
    std::string_view text = ins.original;
    size_t sp = 0;
    while (sp < text.size() && !IsSpace(text[sp])) ++sp;
    std::string upper = Upper(text.substr(0, sp));
    std::string_view rest = TrimLeft(text.substr(sp));
    const CommandInfo* info = nullptr;
    for (const auto& c : kCommands) {
      if (c.name == upper) info = &c;
    }
    if (!info) return Fail(first, "unknown instruction: " + upper, text);
    ins.command = info->command;
    std::vector<std::string> raw_flags;
    rest = ExtractFlags(rest, &raw_flags);
    auto err = [&](std::string_view msg) { return Fail(first, msg, text); };
    std::string cname(info->name);

    // Flags each instruction knows; anything else is "unknown flag".
    std::set<std::string, std::less<>> allowed;
    switch (ins.command) {
      case Command::kFrom: allowed = {"platform"}; break;
      case Command::kCopy: allowed = {"from", "chown", "chmod"}; break;
      case Command::kAdd: allowed = {"chown", "chmod"}; break;
      case Command::kHealthcheck:
        allowed = {"interval", "timeout", "start-period", "start-interval", "retries"};
        break;
      default: break;
    }
    for (const auto& f : raw_flags) {
      std::string_view arg = f;
      if (arg.substr(0, 2) != "--") return err("arg should start with -- : " + f);
      arg.remove_prefix(2);
      size_t eq = arg.find('=');
      std::string key(arg.substr(0, eq));
      if (!allowed.count(key)) return err("unknown flag: " + key);
      if (ins.flags.count(key)) return err("duplicate flag specified: " + key);
      if (eq == std::string_view::npos) return err("missing a value on flag: " + key);
      ins.flags[key] = std::string(arg.substr(eq + 1));
    }

    auto maybe_json = [&](bool to_list) -> Result<void> {
      std::vector<std::string> items;
      switch (ParseJsonArray(rest, &items)) {
        case JsonResult::kArray:
          ins.args = std::move(items);
          ins.json = true;
          return Ok();
        case JsonResult::kNotStrings:
          return err("when using JSON array syntax, arrays must be comprised of strings only");
        case JsonResult::kNotJson:
          break;
      }
      if (to_list) {
        ins.args = SplitWhitespace(rest);
      } else if (!rest.empty()) {
        ins.args = {std::string(rest)};
      }
      return Ok();
    };
    auto refuse_heredoc = [&]() -> Result<void> {
      if (ins.json) return Ok();
      for (const auto& w : RawWords(rest, d.escape)) {
        if (IsHeredocWord(w)) {
          return err("heredocs (" + w + ") are not supported; write the content to a file in the context and COPY it");
        }
      }
      return Ok();
    };
    auto name_vals = [&](bool arg_form) -> Result<void> {
      std::vector<std::string> words = RawWords(rest, d.escape);
      if (words.empty()) return err(cname + " requires at least one argument");
      if (arg_form) {
        for (const auto& w : words) {
          size_t eq = w.find('=');
          KeyValue kv{w.substr(0, eq), std::nullopt};
          if (eq != std::string::npos) kv.value = w.substr(eq + 1);
          if (kv.key.empty()) return err(cname + " names can not be blank");
          ins.pairs.push_back(std::move(kv));
        }
        return Ok();
      }
      if (words[0].find('=') == std::string::npos) {
        // Legacy "ENV name value": the value is the rest of the line.
        size_t i = 0;
        while (i < rest.size() && !IsSpace(rest[i])) ++i;
        std::string_view value = TrimLeft(rest.substr(i));
        if (value.empty()) return err(cname + " must have two arguments");
        ins.pairs.push_back({std::string(rest.substr(0, i)), std::string(value)});
        return Ok();
      }
      for (const auto& w : words) {
        size_t eq = w.find('=');
        if (eq == std::string::npos) {
          return err("Syntax error - can't find = in \"" + w + "\". Must be of the form: name=value");
        }
        if (eq == 0) return err(cname + " names can not be blank");
        ins.pairs.push_back({w.substr(0, eq), w.substr(eq + 1)});
      }
      return Ok();
    };
    auto exactly_one = [&]() -> Result<void> {
      if (rest.empty()) return err(cname + " requires exactly one argument");
      ins.args = {std::string(rest)};
      return Ok();
    };

    switch (ins.command) {
      case Command::kFrom: {
        ins.args = SplitWhitespace(rest);
        if (ins.args.size() == 3 && Lower(ins.args[1]) == "as") {
          std::string n = Lower(ins.args[2]);
          bool ok = !n.empty() && n[0] >= 'a' && n[0] <= 'z';
          for (char c : n) {
            ok = ok && (std::islower(static_cast<unsigned char>(c)) ||
                        std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                        c == '.');
          }
          if (!ok) {
            return err("invalid name for build stage: \"" + ins.args[2] +
                       "\", name can't start with a number or contain symbols");
          }
        } else if (ins.args.size() != 1) {
          return err("FROM requires either one or three arguments");
        }
        break;
      }
      case Command::kRun:
        TRY(maybe_json(false));
        if (ins.args.empty() && !ins.json) return err("RUN requires at least one argument");
        TRY(refuse_heredoc());
        break;
      case Command::kCmd:
      case Command::kEntrypoint:
        TRY(maybe_json(false));
        break;
      case Command::kShell:
        TRY(maybe_json(false));
        if (!ins.json) return err("SHELL requires the arguments to be in JSON form");
        if (ins.args.empty()) return err("SHELL requires at least one argument");
        break;
      case Command::kCopy:
      case Command::kAdd:
        TRY(maybe_json(true));
        TRY(refuse_heredoc());
        if (ins.args.size() < 2) {
          return err(cname + " requires at least two arguments, but only one was provided. "
                             "Destination could not be determined.");
        }
        break;
      case Command::kVolume:
        TRY(maybe_json(true));
        if (ins.args.empty()) return err("VOLUME requires at least one argument");
        for (const auto& v : ins.args) {
          if (TrimBoth(v).empty()) return err("VOLUME specified can not be an empty string");
        }
        break;
      case Command::kExpose:
        ins.args = SplitWhitespace(rest);
        if (ins.args.empty()) return err("EXPOSE requires at least one argument");
        break;
      case Command::kEnv:
      case Command::kLabel:
        TRY(name_vals(false));
        break;
      case Command::kArg:
        TRY(name_vals(true));
        break;
      case Command::kWorkdir:
      case Command::kUser:
      case Command::kStopSignal:
      case Command::kMaintainer:
        TRY(exactly_one());
        break;
      case Command::kHealthcheck:
        TRY(ParseHealthcheck(&ins, rest, err));
        break;
      case Command::kOnbuild: {
        if (rest.empty()) return err("ONBUILD requires at least one argument");
        Instruction sub = TRY(ParseInstruction(rest, first, last, d));
        if (sub.command == Command::kOnbuild) {
          return err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        }
        if (sub.command == Command::kFrom || sub.command == Command::kMaintainer) {
          return err(std::string(CommandName(sub.command)) + " isn't allowed as an ONBUILD trigger");
        }
        ins.trigger = std::string(rest);
        ins.trigger_parsed.push_back(std::move(sub));
        break;
      }
    }
    return ins;
  }

  template <typename ErrFn>
  Result<void> ParseHealthcheck(Instruction* ins, std::string_view rest, ErrFn err) {
    size_t sep = 0;
    while (sep < rest.size() && !IsSpace(rest[sep])) ++sep;
    if (sep == 0) return err("HEALTHCHECK requires at least one argument");
    std::string type = Upper(rest.substr(0, sep));
    rest = TrimLeft(rest.substr(sep));
    HealthConfig h;
    if (type == "NONE") {
      if (!rest.empty()) return err("HEALTHCHECK NONE takes no arguments");
      h.test = {"NONE"};
      ins->health = std::move(h);
      return Ok();
    }
    if (type != "CMD") return err("Unknown type \"" + type + "\" in HEALTHCHECK (try CMD)");
    std::vector<std::string> items;
    switch (ParseJsonArray(rest, &items)) {
      case JsonResult::kArray:
        ins->json = true;
        break;
      case JsonResult::kNotStrings:
        return err("when using JSON array syntax, arrays must be comprised of strings only");
      case JsonResult::kNotJson:
        if (!rest.empty()) items = {std::string(rest)};
        break;
    }
    if (items.empty()) return err("Missing command after HEALTHCHECK CMD");
    ins->args = items;
    h.test = {ins->json ? "CMD" : "CMD-SHELL"};
    h.test.insert(h.test.end(), items.begin(), items.end());
    struct {
      const char* flag;
      int64_t* out;
    } durations[] = {{"interval", &h.interval_ns},
                     {"timeout", &h.timeout_ns},
                     {"start-period", &h.start_period_ns},
                     {"start-interval", &h.start_interval_ns}};
    for (auto& d : durations) {
      auto it = ins->flags.find(d.flag);
      if (it == ins->flags.end() || it->second.empty()) continue;
      auto v = ParseGoDuration(it->second);
      if (!v) return err("--" + std::string(d.flag) + ": " + v.error().message());
      if (*v != 0 && *v < 1000000) {
        return err("Interval \"" + std::string(d.flag) + "\" cannot be less than 1ms");
      }
      *d.out = *v;
    }
    if (auto it = ins->flags.find("retries"); it != ins->flags.end() && !it->second.empty()) {
      const std::string& s = it->second;
      int64_t r = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), r);
      if (ec != std::errc() || p != s.data() + s.size() || r > std::numeric_limits<int32_t>::max() ||
          r < std::numeric_limits<int32_t>::min()) {
        return err("--retries: invalid number \"" + s + "\"");
      }
      if (r < 0) return err("--retries cannot be negative (" + s + ")");
      h.retries = static_cast<int>(r);
    }
    ins->health = std::move(h);
    return Ok();
  }

  std::string_view name_;
};

}  // namespace

std::string_view CommandName(Command c) {
  for (const auto& i : kCommands) {
    if (i.command == c) return i.name;
  }
  return "?";
}

Result<Dockerfile> ParseDockerfile(std::string_view text, std::string_view name) {
  Parser parser(name);
  Directives d;
  Dockerfile df;

  std::vector<std::string_view> lines;
  for (size_t start = 0; start < text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = text.substr(start, nl - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);  // bufio.ScanLines drops it
    lines.push_back(l);
    start = nl + 1;
  }
  if (!lines.empty() && lines[0].substr(0, 3) == "\xEF\xBB\xBF") lines[0].remove_prefix(3);

  // Directives: only while every line so far was one; a line that is not ends them.
  auto directive = [&](std::string_view line, int lineno) -> Result<void> {
    if (d.done) return Ok();
    std::string key, value;
    if (!MatchDirective(line, &key, &value) || !kDirectives.count(key)) {
      d.done = true;
      return Ok();
    }
    if (d.seen.count(key)) {
      return parser.Fail(lineno, "only one " + key + " parser directive can be used", line);
    }
    d.seen.insert(key);
    if (key == "escape") {
      if (value != "`" && value != "\\") {
        return parser.Fail(lineno, "invalid escape token '" + value + "' does not match ` or \\",
                           line);
      }
      d.escape = value[0];
    } else if (key == "syntax") {
      d.syntax = value;
    }
    return Ok();
  };
  // Strips the escape token (and blanks after it) at the end; false when it was there.
  auto trim_continuation = [&](std::string_view l, bool* end) {
    std::string_view t = l;
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (!t.empty() && t.back() == d.escape) {
      *end = false;
      t.remove_suffix(1);
      return t;
    }
    *end = true;
    return l;
  };

  bool seen_from = false;
  std::set<std::string> stage_names;
  size_t i = 0;
  while (i < lines.size()) {
    int first = static_cast<int>(i) + 1;
    std::string_view raw = TrimLeft(lines[i]);
    TRY(directive(raw, first));
    ++i;
    if (!raw.empty() && raw[0] == '#') raw = {};
    bool end = true;
    std::string_view head = trim_continuation(raw, &end);
    if (end && head.empty()) continue;
    std::string line(head);
    bool empty_continuation = false;
    while (!end && i < lines.size()) {
      std::string_view l = lines[i];
      TRY(directive(l, static_cast<int>(i) + 1));
      ++i;
      if (IsComment(l)) continue;  // comment lines inside a continuation are dropped
      if (TrimLeft(l).empty()) {
        empty_continuation = true;
        continue;
      }
      line += trim_continuation(l, &end);
    }
    int last = static_cast<int>(i);
    if (empty_continuation) {
      df.warnings.push_back(std::string(name) + ":" + std::to_string(first) +
                            ": empty continuation line");
    }
    Instruction ins = TRY(parser.ParseInstruction(line, first, last, d));
    if (ins.command == Command::kFrom) {
      seen_from = true;
      Stage st;
      st.base = ins.args[0];
      if (ins.args.size() == 3) {
        st.name = Lower(ins.args[2]);
        if (!stage_names.insert(st.name).second) {
          return parser.Fail(first, "duplicate stage name \"" + st.name + "\"", ins.original);
        }
      }
      if (auto it = ins.flags.find("platform"); it != ins.flags.end()) st.platform = it->second;
      st.from = std::move(ins);
      df.stages.push_back(std::move(st));
    } else if (!seen_from) {
      if (ins.command != Command::kArg) {
        return parser.Fail(first, "no build stage in current context: only ARG may come before the first FROM",
                           ins.original);
      }
      df.meta_args.push_back(std::move(ins));
    } else {
      df.stages.back().instructions.push_back(std::move(ins));
    }
  }
  if (df.stages.empty()) {
    if (df.meta_args.empty()) {
      return Error(Errc::kInvalidArgument, std::string(name) + ": file with no instructions");
    }
    return Error(Errc::kInvalidArgument,
                 std::string(name) + ": dockerfile contains no stages to build (no FROM)");
  }
  df.escape = d.escape;
  df.syntax = d.syntax;
  return df;
}

Result<int64_t> ParseGoDuration(std::string_view orig) {
  auto bad = [&] {
    return Error(Errc::kInvalidArgument, "time: invalid duration \"" + std::string(orig) + "\"");
  };
  std::string_view s = orig;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return int64_t{0};
  if (s.empty()) return bad();
  struct Unit {
    std::string_view name;
    int64_t ns;
  };
  // Longest names first so "ms" is not read as "m".
  static constexpr Unit kUnits[] = {{"ns", 1},          {"us", 1000},        {"\xC2\xB5s", 1000},
                                    {"\xCE\xBCs", 1000}, {"ms", 1000000},     {"s", 1000000000},
                                    {"m", 60000000000},  {"h", 3600000000000}};
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view whole = s.substr(0, i);
    std::string_view frac;
    if (i < s.size() && s[i] == '.') {
      size_t j = ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      frac = s.substr(j, i - j);
    }
    if (whole.empty() && frac.empty()) return bad();
    s.remove_prefix(i);
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (s.substr(0, u.name.size()) == u.name) {
        unit = &u;
        break;
      }
    }
    if (!unit) return bad();
    s.remove_prefix(unit->name.size());
    uint64_t w = 0;
    if (!whole.empty()) {
      auto [p, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), w);
      if (ec != std::errc()) return bad();
    }
    long double value = static_cast<long double>(w);
    long double scale = 1;
    for (char c : frac) {
      scale /= 10;
      value += (c - '0') * scale;
    }
    total += value * unit->ns;
    if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) return bad();
  }
  int64_t ns = static_cast<int64_t>(total);
  return neg ? -ns : ns;
}

std::optional<size_t> FindStage(const Dockerfile& df, std::string_view ref, size_t before) {
  std::string lower = Lower(ref);
  for (size_t i = 0; i < before && i < df.stages.size(); ++i) {
    if (!df.stages[i].name.empty() && df.stages[i].name == lower) return i;
  }
  size_t n = 0;
  auto [p, ec] = std::from_chars(ref.data(), ref.data() + ref.size(), n);
  if (!ref.empty() && ec == std::errc() && p == ref.data() + ref.size() && n < before &&
      n < df.stages.size()) {
    return n;
  }
  return std::nullopt;
}

}  // namespace shale::build
