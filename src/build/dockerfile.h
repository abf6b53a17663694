// The Dockerfile front end: text -> stages of instructions, with docker's rules
// (moby/buildkit frontend/dockerfile/parser and instructions). Pure: no I/O, no expansion
// (build/expand.h does that), so every rule is table-tested.
//
// What it accepts, as docker does:
//  - parser directives `# escape=` / `# syntax=` / `# check=` only at the very top: the
//    first line that is not a directive (a comment, a blank line, an instruction, an
//    unknown directive) ends them; a directive given twice is an error.
//  - comments (`#` as the first non-blank character of a line), removed before parsing,
//    also between continuation lines; the escape token at the end of a line continues it;
//    blank continuation lines are skipped (with a warning, as docker gives).
//  - instruction names in any case; `--flag=value` flags before the arguments.
//  - exec (JSON array of strings) or shell form for RUN CMD ENTRYPOINT (and HEALTHCHECK
//    CMD); SHELL only in exec form; COPY ADD VOLUME in either form. A line that is not
//    valid JSON is shell form; a JSON array holding a non-string is an error.
//  - heredocs (`RUN <<EOF`) are refused: the classic builder shale matches has none.
// Every error is kInvalidArgument "Dockerfile:LINE: message, in: offending text" and comes
// before any work.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace shale::build {

enum class Command {
  kAdd, kArg, kCmd, kCopy, kEntrypoint, kEnv, kExpose, kFrom, kHealthcheck, kLabel,
  kMaintainer, kOnbuild, kRun, kShell, kStopSignal, kUser, kVolume, kWorkdir,
};
// "RUN", "COPY", ... as docker prints them in step lines and history.
std::string_view CommandName(Command c);

// ENV / LABEL pair, ARG declaration. Text is as written (quotes kept): expansion removes
// quotes, as docker's does. `value` is nullopt only for an ARG without a default.
struct KeyValue {
  std::string key;
  std::optional<std::string> value;
};

// HEALTHCHECK, in the image config's units (nanoseconds; 0 = inherit the default).
struct HealthConfig {
  std::vector<std::string> test;  // {"NONE"}, {"CMD", argv...} or {"CMD-SHELL", "cmd"}
  int64_t interval_ns = 0;
  int64_t timeout_ns = 0;
  int64_t start_period_ns = 0;
  int64_t start_interval_ns = 0;
  int retries = 0;
};

struct Instruction {
  Command command;
  int line = 0;      // first line of the instruction (1-based)
  int end_line = 0;  // last line, continuations included
  // The instruction as written, continuations joined, comments dropped: for messages, step
  // lines, and ONBUILD (docker records the trigger's text).
  std::string original;
  // Flags by name without "--" (validated: only the ones the instruction knows).
  std::map<std::string, std::string> flags;
  // exec form: the JSON array's strings. Shell form: RUN/CMD/ENTRYPOINT and HEALTHCHECK CMD
  // hold the whole command text as args[0]; the other instructions hold whitespace-split
  // words (FROM: image [AS name]; COPY/ADD: sources... dest; VOLUME, EXPOSE: items;
  // WORKDIR, USER, STOPSIGNAL, MAINTAINER: the rest of the line as one word).
  std::vector<std::string> args;
  bool json = false;
  std::vector<KeyValue> pairs;  // ENV, LABEL, ARG
  std::optional<HealthConfig> health;
  // ONBUILD: the trigger's text (what the image config's OnBuild holds) and the trigger
  // parsed, so that a bad trigger fails now, not in the child build.
  std::string trigger;
  std::vector<Instruction> trigger_parsed;  // exactly one for ONBUILD
};

struct Stage {
  Instruction from;        // the FROM line itself
  std::string base;        // image reference, "scratch" or an earlier stage (unexpanded)
  std::string name;        // `AS name`, lower-cased; "" when none
  std::string platform;    // --platform value, unexpanded
  std::vector<Instruction> instructions;  // after FROM, up to the next FROM
};

struct Dockerfile {
  char escape = '\\';
  std::string syntax;                 // # syntax= value (recorded, not acted on)
  std::vector<Instruction> meta_args;  // ARG lines before the first FROM
  std::vector<Stage> stages;
  std::vector<std::string> warnings;  // "Dockerfile:LINE: empty continuation line"
};

// Parses `text`; `name` is used in messages ("Dockerfile", "-" for stdin, a -f path).
// kInvalidArgument with "NAME:LINE: ..." on any syntax error, unknown instruction or flag,
// wrong argument count, an instruction other than ARG before the first FROM, a file with
// no FROM, or a duplicate stage name.
Result<Dockerfile> ParseDockerfile(std::string_view text, std::string_view name = "Dockerfile");

// A Go time.ParseDuration string ("1m30s", "1.5h", "300ms") in nanoseconds.
Result<int64_t> ParseGoDuration(std::string_view s);

// Index of the stage that `ref` names: its `AS` name (case-insensitive) or its position
// ("0", "1", ... as COPY --from accepts) among the stages before `before`. nullopt if none.
std::optional<size_t> FindStage(const Dockerfile& df, std::string_view ref, size_t before);

}  // namespace shale::build
