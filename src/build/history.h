// What one Dockerfile instruction does to the image config, and the `created_by` history
// line docker's classic builder writes for it. Pure: the builder supplies the expanded
// instruction and, for COPY/ADD, the digest of the sources.
//
// History lines, as docker writes them (moby builder/dockerfile dispatchers.go):
//   ENV A=1             -> "/bin/sh -c #(nop)  ENV A=1"   (the stage's SHELL replaces /bin/sh -c)
//   RUN echo $G, ARG G  -> "|1 G=hi /bin/sh -c echo $G"  (no "|N" part without build args)
//   COPY a /x           -> "/bin/sh -c #(nop) COPY file:<hex> in /x "
//   CMD ["sh"]          -> "/bin/sh -c #(nop)  CMD [\"sh\"]"   (Go's %q of a []string)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "build/expand.h"
#include "util/error.h"

namespace shale::build {

// The shell of shell-form RUN/CMD/ENTRYPOINT: config["Shell"], else ["/bin/sh","-c"].
std::vector<std::string> ShellOf(const nlohmann::json& config);

// The argv of a RUN: exec form as written; shell form is the shell plus the command text.
std::vector<std::string> RunArgs(const ExpandedInstruction& ins, const nlohmann::json& config);

// "#(nop)" line: "<shell> #(nop)  <comment>" (docker writes one space less for COPY, ADD
// and WORKDIR: `tight`).
std::string NopCreatedBy(const nlohmann::json& config, std::string_view comment,
                         bool tight = false);

// RUN's history line: "|N K=V ... " (history_args) then the argv joined by spaces.
std::string RunCreatedBy(const ExpandedInstruction& ins, const nlohmann::json& config);

// COPY/ADD's history line. `sources_id` is "file:<hex>", "dir:<hex>" or "multi:<hex>";
// `dest` is the destination as written after expansion.
std::string CopyCreatedBy(const ExpandedInstruction& ins, const nlohmann::json& config,
                          std::string_view sources_id);

// Go's %q of a string and of a []string (`["a" "b c"]`), as docker's history uses.
std::string GoQuote(std::string_view s);
std::string GoQuoteList(const std::vector<std::string>& v);

// The stage's WORKDIR after `WORKDIR dir`: absolute dirs as given, relative ones joined to
// the previous, cleaned ("/a" + "b/../c" -> "/a/c").
std::string JoinWorkdir(std::string_view previous, std::string_view dir);

struct ConfigChange {
  std::string created_by;   // the history line
  std::string author;       // MAINTAINER sets the image's author
};

// Applies a config-only instruction (ENV LABEL ARG EXPOSE VOLUME USER WORKDIR STOPSIGNAL
// CMD ENTRYPOINT HEALTHCHECK SHELL ONBUILD MAINTAINER) to `config` (the image config's
// "config" object) and returns its history line. `cmd_set`: whether CMD was given in this
// stage (ENTRYPOINT clears an inherited Cmd, as docker does). kInvalidArgument for
// RUN/COPY/ADD/FROM.
Result<ConfigChange> ApplyToConfig(const ExpandedInstruction& ins, nlohmann::json& config,
                                   bool* cmd_set);

// The "config" docker starts a stage from: the base's config, PATH added to Env when it has
// none, OnBuild cleared (triggers run once, in the child).
nlohmann::json StageConfig(const nlohmann::json& base_config);

}  // namespace shale::build
