#include "build/history.h"

#include <gtest/gtest.h>

#include "build/dockerfile.h"

namespace shale::build {
namespace {

using nlohmann::json;

// Parses `line` as the one instruction after FROM and expands it with `args`.
struct Expanded {
  Dockerfile df;
  ExpandedInstruction e;
};
Expanded Expand(const std::string& line, const BuildArgs& args = {},
                std::vector<std::string> env = {}) {
  Expanded x;
  auto df = ParseDockerfile("FROM busybox\n" + line + "\n");
  EXPECT_TRUE(df) << df.error().message();
  x.df = std::move(*df);
  StageExpander ex(x.df, args, {}, std::move(env));
  const auto& ins = x.df.stages[0].instructions;
  for (size_t i = 0; i + 1 < ins.size(); ++i) EXPECT_TRUE(ex.Expand(ins[i]));
  auto e = ex.Expand(ins.back());
  EXPECT_TRUE(e) << e.error().message();
  x.e = std::move(*e);
  return x;
}

TEST(HistoryTest, NopLinesAsDockerWritesThem) {
  struct Case {
    const char* dockerfile;
    const char* created_by;
  } cases[] = {
      {"ENV A=1 B=\"two words\"", "/bin/sh -c #(nop)  ENV A=1 B=two words"},
      {"ENV legacy form here", "/bin/sh -c #(nop)  ENV legacy=form here"},
      {"LABEL a=b", "/bin/sh -c #(nop)  LABEL a=b"},
      {"ARG X=1", "/bin/sh -c #(nop)  ARG X=1"},
      {"ARG Y", "/bin/sh -c #(nop)  ARG Y"},
      {"USER bob", "/bin/sh -c #(nop)  USER bob"},
      {"WORKDIR /app", "/bin/sh -c #(nop) WORKDIR /app"},
      {"CMD [\"sh\", \"-c\", \"echo \\\"hi\\\"\"]",
       "/bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"echo \\\"hi\\\"\"]"},
      {"CMD echo hi", "/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"echo hi\"]"},
      {"ENTRYPOINT [\"/ep\"]", "/bin/sh -c #(nop)  ENTRYPOINT [\"/ep\"]"},
      {"VOLUME /a /b", "/bin/sh -c #(nop)  VOLUME [/a /b]"},
      {"STOPSIGNAL SIGKILL", "/bin/sh -c #(nop)  STOPSIGNAL SIGKILL"},
      {"SHELL [\"/bin/bash\", \"-c\"]", "/bin/bash -c #(nop)  SHELL [/bin/bash -c]"},
      {"ONBUILD RUN echo hi", "/bin/sh -c #(nop)  ONBUILD RUN echo hi"},
      {"HEALTHCHECK --interval=5s --retries=3 CMD curl x",
       "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"curl x\"] \"5s\" \"0s\" \"0s\" \"0s\" "
       "'\\x03'}"},
  };
  for (const auto& c : cases) {
    Expanded x = Expand(c.dockerfile);
    json config = json::object();
    bool cmd_set = false;
    auto ch = ApplyToConfig(x.e, config, &cmd_set);
    ASSERT_TRUE(ch) << c.dockerfile;
    EXPECT_EQ(ch->created_by, c.created_by) << c.dockerfile;
  }
}

TEST(HistoryTest, RunLinesCarryTheBuildArgsInEffect) {
  json config = json::object();
  {
    Expanded x = Expand("ARG GREETING=hi\nRUN echo $GREETING");
    EXPECT_EQ(RunCreatedBy(x.e, config), "|1 GREETING=hi /bin/sh -c echo $GREETING");
  }
  {
    Expanded x = Expand("ARG B\nARG A=1\nRUN true", {{"B", "x y"}});
    EXPECT_EQ(RunCreatedBy(x.e, config), "|2 A=1 B=x y /bin/sh -c true");
  }
  {
    // Undeclared proxies reach the environment, never the history.
    Expanded x = Expand("RUN [\"echo\", \"a b\"]", {{"HTTP_PROXY", "http://p"}});
    EXPECT_EQ(RunCreatedBy(x.e, config), "echo a b");
    EXPECT_EQ(RunArgs(x.e, config), (std::vector<std::string>{"echo", "a b"}));
  }
  {
    Expanded x = Expand("RUN echo hi");
    json sh = {{"Shell", {"/bin/bash", "-xc"}}};
    EXPECT_EQ(RunArgs(x.e, sh), (std::vector<std::string>{"/bin/bash", "-xc", "echo hi"}));
    EXPECT_EQ(RunCreatedBy(x.e, sh), "/bin/bash -xc echo hi");
  }
}

TEST(HistoryTest, CopyLinesNameTheSourcesAndTheDestinationAsWritten) {
  Expanded x = Expand("COPY --chown=1:2 a sub/");
  EXPECT_EQ(CopyCreatedBy(x.e, json::object(), "file:abc"),
            "/bin/sh -c #(nop) COPY --chown=1:2 file:abc in sub/ ");
}

TEST(HistoryTest, ConfigEffects) {
  json config = StageConfig({{"Env", {"A=0"}}, {"Cmd", {"sh"}}, {"OnBuild", {"RUN x"}}});
  // PATH added when the base has none; OnBuild does not pass to the child.
  EXPECT_EQ(config["Env"], json({"A=0", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}));
  EXPECT_FALSE(config.contains("OnBuild"));
  bool cmd_set = false;
  ASSERT_TRUE(ApplyToConfig(Expand("ENV A=1").e, config, &cmd_set));
  EXPECT_EQ(config["Env"][0], "A=1");
  // ENTRYPOINT drops an inherited Cmd, but not one this stage set.
  ASSERT_TRUE(ApplyToConfig(Expand("ENTRYPOINT [\"/ep\"]").e, config, &cmd_set));
  EXPECT_TRUE(config["Cmd"].is_null());
  ASSERT_TRUE(ApplyToConfig(Expand("CMD [\"x\"]").e, config, &cmd_set));
  ASSERT_TRUE(ApplyToConfig(Expand("ENTRYPOINT [\"/ep2\"]").e, config, &cmd_set));
  EXPECT_EQ(config["Cmd"], json({"x"}));
  ASSERT_TRUE(ApplyToConfig(Expand("WORKDIR /a").e, config, &cmd_set));
  ASSERT_TRUE(ApplyToConfig(Expand("WORKDIR b/../c").e, config, &cmd_set));
  EXPECT_EQ(config["WorkingDir"], "/a/c");
  auto exposed = ApplyToConfig(Expand("EXPOSE 80 53/udp").e, config, &cmd_set);
  ASSERT_TRUE(exposed);
  EXPECT_EQ(config["ExposedPorts"], json({{"80/tcp", json::object()}, {"53/udp", json::object()}}));
  // The history line keeps the ports as written, as docker's does.
  EXPECT_EQ(exposed->created_by, "/bin/sh -c #(nop)  EXPOSE 80 53/udp");
  ASSERT_TRUE(ApplyToConfig(Expand("HEALTHCHECK NONE").e, config, &cmd_set));
  EXPECT_EQ(config["Healthcheck"], json({{"Test", {"NONE"}}}));
  EXPECT_FALSE(ApplyToConfig(Expand("RUN true").e, config, &cmd_set));
}

TEST(HistoryTest, GoQuoting) {
  EXPECT_EQ(GoQuote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
  EXPECT_EQ(GoQuoteList({"a", "b c"}), "[\"a\" \"b c\"]");
  EXPECT_EQ(JoinWorkdir("", "x"), "/x");
  EXPECT_EQ(JoinWorkdir("/a/b", "/c/"), "/c");
}

}  // namespace
}  // namespace shale::build
