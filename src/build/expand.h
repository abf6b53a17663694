// Walks a parsed Dockerfile with docker's variable and ARG rules, yielding each
// instruction with its words expanded and the build args in effect. Pure: the builder
// supplies what needs I/O (the base image's Env) and consumes the results.
//
// ARG scoping, as docker's classic builder does it:
//  - ARGs before the first FROM ("meta args") are visible only in FROM lines (image,
//    --platform), and inside a stage only where redeclared by name (`ARG NAME`).
//  - Inside a stage an ARG is visible from its declaration on; --build-arg overrides its
//    default; without either it is unset. ENV of the same name wins over an ARG.
//  - HTTP_PROXY http_proxy HTTPS_PROXY https_proxy FTP_PROXY ftp_proxy NO_PROXY no_proxy
//    ALL_PROXY all_proxy are usable without declaration when given with --build-arg, and
//    are left out of RUN's history line unless declared.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "build/dockerfile.h"
#include "build/shell_words.h"
#include "util/error.h"

namespace shale::build {

using BuildArgs = std::map<std::string, std::string, std::less<>>;  // --build-arg K=V

bool IsPredefinedArg(std::string_view name);

struct ExpandedInstruction {
  const Instruction* source = nullptr;
  Command command;
  // Expanded words: COPY/ADD sources... dest; VOLUME paths; EXPOSE "80/tcp" items
  // (a bare port gets "/tcp"); WORKDIR USER STOPSIGNAL MAINTAINER one word.
  // RUN CMD ENTRYPOINT SHELL HEALTHCHECK: the parsed args unchanged (their shell expands).
  // ONBUILD: {trigger text}, unexpanded (expanded when the child build runs it).
  std::vector<std::string> words;
  // EXPOSE: the items as written, after expansion ("80", "53/udp"): docker's history line
  // shows these, the config the normalised words.
  std::vector<std::string> expose_specs;
  std::vector<KeyValue> pairs;                // ENV LABEL: expanded; ARG: the value in effect
  std::map<std::string, std::string> flags;   // COPY/ADD flags expanded
  // For RUN's history line "|N K=V ... cmd": sorted K=V of the args in effect, without ENV
  // overrides and undeclared proxy args (docker's prependEnvOnCmd).
  std::vector<std::string> history_args;
  // RUN's process environment: the stage's ENV then every arg in effect (proxies too).
  std::vector<std::string> run_env;
};

struct ExpandedFrom {
  std::string base;      // image reference, "scratch", or an earlier stage's name/index
  std::string name;      // AS name
  std::string platform;  // "" unless --platform
};

// Meta args (before the first FROM) resolved: --build-arg override, else the default
// expanded with the meta args before it. An ARG without either is absent.
Result<VarMap> ResolveMetaArgs(const Dockerfile& df, const BuildArgs& build_args);

// The FROM line of stage `i` expanded with the meta args only.
Result<ExpandedFrom> ExpandFrom(const Dockerfile& df, size_t i, const VarMap& meta);

// The stages a build of `target` ("" = the last stage) must run, in order: the target and,
// transitively, the stages its FROM and COPY --from name. kInvalidArgument for an unknown
// target.
Result<std::vector<size_t>> StagesNeeded(const Dockerfile& df, std::string_view target,
                                         const VarMap& meta);

class StageExpander {
 public:
  // `base_env` is the base image's (or earlier stage's) Env, "K=V" each.
  StageExpander(const Dockerfile& df, const BuildArgs& build_args, const VarMap& meta,
                std::vector<std::string> base_env);

  // Expands `ins` in the current state, then applies its effect (ENV, ARG) to the state.
  // Errors are "Dockerfile:LINE: message, in: text" (bad substitution, bad port, signal,
  // --chmod).
  Result<ExpandedInstruction> Expand(const Instruction& ins);

  const std::vector<std::string>& env() const { return env_; }  // the stage's ENV, K=V
  // --build-arg names an ARG of this stage consumed.
  const std::set<std::string>& used_build_args() const { return used_; }

 private:
  VarMap Vars() const;                    // expansion environment
  std::map<std::string, std::string> ArgsInEffect() const;
  void SetEnv(const std::string& k, const std::string& v);

  const Dockerfile& df_;
  BuildArgs build_args_;  // copies: callers pass temporaries (ASan: stack-use-after-scope)
  VarMap meta_;
  Lexer lex_;
  std::vector<std::string> env_;
  std::map<std::string, std::optional<std::string>> declared_;  // ARGs of this stage
  std::set<std::string> used_;
};

// Convenience: every instruction of stage `i` expanded in order.
Result<std::vector<ExpandedInstruction>> ExpandStage(const Dockerfile& df, size_t i,
                                                     const BuildArgs& build_args,
                                                     const VarMap& meta,
                                                     std::vector<std::string> base_env);

// The --build-arg names no ARG of the Dockerfile declares and that are not predefined
// (docker warns "One or more build-args [X] were not consumed").
std::vector<std::string> UnconsumedBuildArgs(const Dockerfile& df, const BuildArgs& given);

}  // namespace shale::build
