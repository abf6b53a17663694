#include "build/dockerfile.h"

#include <gtest/gtest.h>

namespace shale::build {
namespace {

using V = std::vector<std::string>;

Dockerfile MustParse(std::string_view text) {
  auto r = ParseDockerfile(text);
  EXPECT_TRUE(r) << text << "\n-> " << (r ? "" : r.error().message());
  return r ? std::move(r).value() : Dockerfile{};
}

TEST(DockerfileTest, EveryInstructionAndItsForm) {
  Dockerfile df = MustParse(R"(# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM --platform=linux/amd64 ${BASE} AS Build
RUN echo hi && \
    echo there
RUN ["/bin/sh", "-c", "echo exec"]
CMD ["sleep", "1"]
ENTRYPOINT /bin/true
SHELL ["/bin/bash", "-eu", "-c"]
COPY --from=0 --chown=1:2 --chmod=0644 a b /dst/
ADD --chown=app ["x y", "/z"]
ENV A=1 B="two words" C=three\ words
ENV LEGACY some value
ARG NAME ARG2=def
LABEL org.example="v" other=1
EXPOSE 80/tcp 53/udp
VOLUME ["/a"]
VOLUME /b /c
WORKDIR /w x
USER app:app
STOPSIGNAL SIGTERM
MAINTAINER someone <a@b>
HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD curl -f http://localhost/ || exit 1
ONBUILD ADD . /app/src
onbuild run echo lower
FROM build
HEALTHCHECK NONE
HEALTHCHECK CMD ["true"]
)");
  EXPECT_EQ(df.syntax, "docker/dockerfile:1");
  ASSERT_EQ(df.meta_args.size(), 1u);
  EXPECT_EQ(df.meta_args[0].pairs[0].key, "BASE");
  EXPECT_EQ(*df.meta_args[0].pairs[0].value, "busybox");
  ASSERT_EQ(df.stages.size(), 2u);
  const Stage& s = df.stages[0];
  EXPECT_EQ(s.base, "${BASE}");
  EXPECT_EQ(s.name, "build");
  EXPECT_EQ(s.platform, "linux/amd64");
  EXPECT_EQ(s.from.line, 3);
  const auto& in = s.instructions;
  ASSERT_EQ(in.size(), 21u);
  EXPECT_EQ(in[0].command, Command::kRun);
  EXPECT_FALSE(in[0].json);
  EXPECT_EQ(in[0].args, V{"echo hi &&     echo there"});
  EXPECT_EQ(in[0].line, 4);
  EXPECT_EQ(in[0].end_line, 5);
  EXPECT_TRUE(in[1].json);
  EXPECT_EQ(in[1].args, (V{"/bin/sh", "-c", "echo exec"}));
  EXPECT_EQ(in[2].args, (V{"sleep", "1"}));
  EXPECT_TRUE(in[2].json);
  EXPECT_EQ(in[3].args, V{"/bin/true"});
  EXPECT_FALSE(in[3].json);
  EXPECT_EQ(in[4].args, (V{"/bin/bash", "-eu", "-c"}));
  EXPECT_EQ(in[5].command, Command::kCopy);
  EXPECT_EQ(in[5].flags, (std::map<std::string, std::string>{{"from", "0"}, {"chown", "1:2"}, {"chmod", "0644"}}));
  EXPECT_EQ(in[5].args, (V{"a", "b", "/dst/"}));
  EXPECT_EQ(in[6].args, (V{"x y", "/z"}));
  EXPECT_TRUE(in[6].json);
  ASSERT_EQ(in[7].pairs.size(), 3u);
  EXPECT_EQ(*in[7].pairs[1].value, "\"two words\"");  // quotes go at expansion
  EXPECT_EQ(*in[7].pairs[2].value, "three\\ words");
  EXPECT_EQ(in[8].pairs[0].key, "LEGACY");
  EXPECT_EQ(*in[8].pairs[0].value, "some value");
  EXPECT_FALSE(in[9].pairs[0].value.has_value());
  EXPECT_EQ(*in[9].pairs[1].value, "def");
  EXPECT_EQ(in[10].pairs.size(), 2u);
  EXPECT_EQ(in[11].args, (V{"80/tcp", "53/udp"}));
  EXPECT_EQ(in[12].args, V{"/a"});
  EXPECT_EQ(in[13].args, (V{"/b", "/c"}));
  EXPECT_EQ(in[14].args, V{"/w x"});  // WORKDIR takes the rest of the line
  EXPECT_EQ(in[15].args, V{"app:app"});
  EXPECT_EQ(in[16].args, V{"SIGTERM"});
  EXPECT_EQ(in[17].args, V{"someone <a@b>"});
  ASSERT_TRUE(in[18].health);
  EXPECT_EQ(in[18].health->test, (V{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}));
  EXPECT_EQ(in[18].health->interval_ns, 300'000'000'000);
  EXPECT_EQ(in[18].health->timeout_ns, 3'000'000'000);
  EXPECT_EQ(in[18].health->retries, 3);
  EXPECT_EQ(in[19].trigger, "ADD . /app/src");
  ASSERT_EQ(in[19].trigger_parsed.size(), 1u);
  EXPECT_EQ(in[19].trigger_parsed[0].command, Command::kAdd);
  EXPECT_EQ(in[20].trigger, "run echo lower");
  const Stage& s2 = df.stages[1];
  EXPECT_EQ(s2.base, "build");
  EXPECT_EQ(s2.name, "");
  ASSERT_EQ(s2.instructions.size(), 2u);
  EXPECT_EQ(s2.instructions[0].health->test, V{"NONE"});
  EXPECT_EQ(s2.instructions[1].health->test, (V{"CMD", "true"}));
}

TEST(DockerfileTest, ContinuationsCommentsAndBlankLines) {
  // The reference's examples: a comment line inside a continuation is dropped, blank
  // continuation lines are skipped with a warning, indentation before # and instructions.
  Dockerfile df = MustParse(
      "FROM x\n"
      "RUN echo hello \\\n"
      "# comment\n"
      "world\n"
      "        # this is a comment-line\n"
      "    RUN echo \\\n"
      "\n"
      "    world\n"
      "RUN a \\  \n"
      "  b\r\n"
      "RUN last \\");
  const auto& in = df.stages[0].instructions;
  ASSERT_EQ(in.size(), 4u);
  EXPECT_EQ(in[0].args, V{"echo hello world"});
  EXPECT_EQ(in[0].end_line, 4);
  EXPECT_EQ(in[1].line, 6);
  EXPECT_EQ(in[1].args, V{"echo     world"});
  EXPECT_EQ(in[2].args, V{"a   b"});  // blanks after the escape token still continue
  EXPECT_EQ(in[3].args, V{"last"});  // a continuation at end of file ends it
  ASSERT_EQ(df.warnings.size(), 1u);
  EXPECT_EQ(df.warnings[0], "Dockerfile:6: empty continuation line");
}

TEST(DockerfileTest, ParserDirectives) {
  // The escape reference example: with escape=` a trailing '\' is a plain character.
  Dockerfile w = MustParse("# escape=`\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n");
  EXPECT_EQ(w.escape, '`');
  ASSERT_EQ(w.stages[0].instructions.size(), 2u);
  EXPECT_EQ(w.stages[0].instructions[0].args, (V{"testfile.txt", "c:\\"}));
  Dockerfile bt = MustParse("# escape=`\nFROM x\nRUN a `\n  b\n");
  EXPECT_EQ(bt.stages[0].instructions[0].args, V{"a   b"});
  // Without the directive, the same file joins COPY and RUN (as the reference shows).
  Dockerfile d = MustParse("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n");
  ASSERT_EQ(d.stages[0].instructions.size(), 1u);
  EXPECT_EQ(d.stages[0].instructions[0].args, (V{"testfile.txt", "c:RUN", "dir", "c:"}));

  // Whitespace variants of one directive are the same directive.
  for (const char* line : {"#escape=`", "# escape =`", "#\tescape= `", "# escape = ` ", "#\t  eScApE=`"}) {
    EXPECT_EQ(MustParse(std::string(line) + "\nFROM x\n").escape, '`') << line;
  }
  // Not directives: after a comment, a blank line, an instruction, or an unknown directive.
  for (const char* text : {"# About my dockerfile\n# escape=`\nFROM x\n", "\n# escape=`\nFROM x\n",
                           "FROM x\n# escape=`\n", "# unknowndirective=value\n# escape=`\nFROM x\n",
                           "# escape \\\n=`\nFROM x\n"}) {
    auto r = ParseDockerfile(text);
    if (r) {
      EXPECT_EQ(r->escape, '\\') << text;
    }
  }
  auto twice = ParseDockerfile("# escape=\\\n# escape=`\nFROM x\n");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().message(),
            "Dockerfile:2: only one escape parser directive can be used, in: # escape=`");
  auto bad = ParseDockerfile("# escape=x\nFROM x\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("Dockerfile:1: invalid escape token 'x'"), std::string::npos);
  // A UTF-8 byte-order mark does not hide a directive.
  EXPECT_EQ(MustParse("\xEF\xBB\xBF# escape=`\nFROM x\n").escape, '`');
}

TEST(DockerfileTest, JsonOrShellForm) {
  Dockerfile df = MustParse("FROM x\nCMD [ \"echo\", 'hi' ]\nCMD []\nENTRYPOINT [\"a\"]  \nVOLUME [\"/v\", \"/w\"]\n");
  const auto& in = df.stages[0].instructions;
  EXPECT_FALSE(in[0].json);  // not valid JSON: shell form
  EXPECT_EQ(in[0].args, V{"[ \"echo\", 'hi' ]"});
  EXPECT_TRUE(in[1].json);
  EXPECT_TRUE(in[1].args.empty());
  EXPECT_TRUE(in[2].json);
  EXPECT_EQ(in[3].args, (V{"/v", "/w"}));
}

TEST(DockerfileTest, ErrorsNameTheLineAndText) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"FROM x\nRUN a\nFROMM busybox\n", "Dockerfile:3: unknown instruction: FROMM, in: FROMM busybox"},
      {"FROM x\nCOPY --frm=a b c\n", "Dockerfile:2: unknown flag: frm, in: COPY --frm=a b c"},
      {"FROM x\nRUN --mount=type=cache echo\n", "Dockerfile:2: unknown flag: mount, in: RUN --mount=type=cache echo"},
      {"FROM x\nCOPY --from a b\n", "Dockerfile:2: missing a value on flag: from, in: COPY --from a b"},
      {"FROM x\nCOPY --chown=1 --chown=2 a b\n", "Dockerfile:2: duplicate flag specified: chown, in: COPY --chown=1 --chown=2 a b"},
      {"FROM x\nADD onlyone\n", "Dockerfile:2: ADD requires at least two arguments, but only one was provided. Destination could not be determined., in: ADD onlyone"},
      {"RUN x\nFROM y\n", "Dockerfile:1: no build stage in current context: only ARG may come before the first FROM, in: RUN x"},
      {"FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments, in: FROM a b"},
      {"FROM a AS 1x\n", "Dockerfile:1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols, in: FROM a AS 1x"},
      {"FROM a AS s\nFROM b AS S\n", "Dockerfile:2: duplicate stage name \"s\", in: FROM b AS S"},
      {"FROM x\nSHELL /bin/sh -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form, in: SHELL /bin/sh -c"},
      {"FROM x\nCMD [\"a\", 1]\n", "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only, in: CMD [\"a\", 1]"},
      {"FROM x\nENV\n", "Dockerfile:2: ENV requires at least one argument, in: ENV"},
      {"FROM x\nENV A\n", "Dockerfile:2: ENV must have two arguments, in: ENV A"},
      {"FROM x\nENV A=1 B\n", "Dockerfile:2: Syntax error - can't find = in \"B\". Must be of the form: name=value, in: ENV A=1 B"},
      {"FROM x\nLABEL =v\n", "Dockerfile:2: LABEL names can not be blank, in: LABEL =v"},
      {"FROM x\nARG =v\n", "Dockerfile:2: ARG names can not be blank, in: ARG =v"},
      {"FROM x\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument, in: WORKDIR"},
      {"FROM x\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument, in: EXPOSE"},
      {"FROM x\nVOLUME [\"\"]\n", "Dockerfile:2: VOLUME specified can not be an empty string, in: VOLUME [\"\"]"},
      {"FROM x\nONBUILD ONBUILD RUN a\n", "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed, in: ONBUILD ONBUILD RUN a"},
      {"FROM x\nONBUILD FROM y\n", "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger, in: ONBUILD FROM y"},
      {"FROM x\nONBUILD BOGUS y\n", "Dockerfile:2: unknown instruction: BOGUS, in: BOGUS y"},
      {"FROM x\nHEALTHCHECK NONE x\n", "Dockerfile:2: HEALTHCHECK NONE takes no arguments, in: HEALTHCHECK NONE x"},
      {"FROM x\nHEALTHCHECK RUN x\n", "Dockerfile:2: Unknown type \"RUN\" in HEALTHCHECK (try CMD), in: HEALTHCHECK RUN x"},
      {"FROM x\nHEALTHCHECK CMD\n", "Dockerfile:2: Missing command after HEALTHCHECK CMD, in: HEALTHCHECK CMD"},
      {"FROM x\nHEALTHCHECK --interval=1us CMD a\n", "Dockerfile:2: Interval \"interval\" cannot be less than 1ms, in: HEALTHCHECK --interval=1us CMD a"},
      {"FROM x\nHEALTHCHECK --timeout=5 CMD a\n", "Dockerfile:2: --timeout: time: invalid duration \"5\", in: HEALTHCHECK --timeout=5 CMD a"},
      {"FROM x\nHEALTHCHECK --retries=-1 CMD a\n", "Dockerfile:2: --retries cannot be negative (-1), in: HEALTHCHECK --retries=-1 CMD a"},
      {"FROM x\nHEALTHCHECK --retries=99999999999 CMD a\n", "Dockerfile:2: --retries: invalid number \"99999999999\", in: HEALTHCHECK --retries=99999999999 CMD a"},
      {"FROM x\nRUN cat <<EOF\nhi\nEOF\n", "Dockerfile:2: heredocs (<<EOF) are not supported; write the content to a file in the context and COPY it, in: RUN cat <<EOF"},
      {"FROM x\nCOPY <<-\"EOT\" /f\n", "Dockerfile:2: heredocs (<<-\"EOT\") are not supported; write the content to a file in the context and COPY it, in: COPY <<-\"EOT\" /f"},
      {"FROM x\nRUN\n", "Dockerfile:2: RUN requires at least one argument, in: RUN"},
      {"", "Dockerfile: file with no instructions"},
      {"# only a comment\n\n", "Dockerfile: file with no instructions"},
      {"ARG A=1\n", "Dockerfile: dockerfile contains no stages to build (no FROM)"},
      // The error is reported at the first line of a continued instruction.
      {"FROM x\nRUN ok\nCOPY \\\n  --bad=1 \\\n  a b\n", "Dockerfile:3: unknown flag: bad, in: COPY   --bad=1   a b"},
  };
  for (const auto& c : cases) {
    auto r = ParseDockerfile(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    EXPECT_EQ(r.error().message(), c.message) << c.text;
  }
  // -f NAME names the file in messages.
  auto named = ParseDockerfile("FROMM x\n", "ci/Dockerfile.test");
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().message(), "ci/Dockerfile.test:1: unknown instruction: FROMM, in: FROMM x");
}

TEST(DockerfileTest, HeredocLookalikesAreNotHeredocs) {
  Dockerfile df = MustParse("FROM x\nRUN echo '<<EOF'\nRUN cat<<EOF\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\n");
  EXPECT_EQ(df.stages[0].instructions.size(), 3u);
}

TEST(DockerfileTest, FlagQuotingAndTheDoubleDash) {
  Dockerfile df = MustParse("FROM x\nCOPY --chown=\"a b\" -- --weird /d\n");
  const auto& c = df.stages[0].instructions[0];
  EXPECT_EQ(c.flags.at("chown"), "a b");
  EXPECT_EQ(c.args, (V{"--weird", "/d"}));
}

TEST(DockerfileTest, GoDurations) {
  struct Case {
    const char* in;
    int64_t ns;
  } ok[] = {{"0", 0}, {"1s", 1'000'000'000}, {"1m30s", 90'000'000'000}, {"1.5h", 5'400'000'000'000},
            {"300ms", 300'000'000}, {"10us", 10'000}, {"10\xC2\xB5s", 10'000}, {"7ns", 7}, {".5s", 500'000'000}};
  for (const auto& c : ok) {
    auto r = ParseGoDuration(c.in);
    ASSERT_TRUE(r) << c.in;
    EXPECT_EQ(*r, c.ns) << c.in;
  }
  for (const char* bad : {"", "5", "s", "1x", "1.s.", "-", "99999999999999h"}) {
    EXPECT_FALSE(ParseGoDuration(bad)) << bad;
  }
}

TEST(DockerfileTest, FindStageByNameOrIndex) {
  Dockerfile df = MustParse("FROM a AS one\nFROM b\nFROM c AS three\n");
  EXPECT_EQ(FindStage(df, "ONE", 2), 0u);
  EXPECT_EQ(FindStage(df, "1", 2), 1u);
  EXPECT_EQ(FindStage(df, "three", 2), std::nullopt);  // only earlier stages
  EXPECT_EQ(FindStage(df, "busybox", 3), std::nullopt);
}

}  // namespace
}  // namespace shale::build
