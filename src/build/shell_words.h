// Variable expansion in Dockerfile words, with the rules of docker's shell lexer
// (moby/buildkit frontend/dockerfile/shell): quotes, the escape token, and
//   $V ${V}                       value, or "" when unset
//   ${V:-w} ${V-w}                w when V is empty or unset / only when unset
//   ${V:+w} ${V+w}                w when V is non-empty / when set, else ""
//   ${V:?msg} ${V?msg}            error "V: msg" when empty or unset / when unset
//   ${V#p} ${V##p} ${V%p} ${V%%p} shortest/longest prefix/suffix matching glob p removed
//   ${V/p/r} ${V//p/r}            first/every match of glob p replaced by r
// Pure: no I/O. The builder applies it to ADD COPY ENV ARG EXPOSE FROM LABEL STOPSIGNAL
// USER VOLUME WORKDIR (and their ONBUILD triggers); never to RUN CMD ENTRYPOINT, whose
// shell expands.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace shale::build {

// Variables visible to an expansion. A name absent from the map is unset; present with ""
// is set and empty (the difference matters to ${V-w} and ${V?}).
using VarMap = std::map<std::string, std::string, std::less<>>;

class Lexer {
 public:
  // `escape` is the Dockerfile's escape token: '\\' or '`' (# escape= directive).
  explicit Lexer(char escape = '\\') : escape_(escape) {}

  // One word: quotes removed, escapes applied, variables expanded, never split.
  // kInvalidArgument on an unterminated quote, a bad ${...} or a ${V?msg} that fires.
  Result<std::string> ProcessWord(std::string_view word, const VarMap& env) const;
  // A whitespace-separated list (EXPOSE): like ProcessWord, but unquoted whitespace, also
  // whitespace that comes out of an unquoted expansion, separates words.
  Result<std::vector<std::string>> ProcessWords(std::string_view input, const VarMap& env) const;

  char escape() const { return escape_; }

 private:
  char escape_;
};

}  // namespace shale::build
