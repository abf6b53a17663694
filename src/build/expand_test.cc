#include "build/expand.h"

#include <gtest/gtest.h>

namespace shale::build {
namespace {

using V = std::vector<std::string>;

Dockerfile Parse(std::string_view text) {
  auto r = ParseDockerfile(text);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? std::move(r).value() : Dockerfile{};
}

std::vector<ExpandedInstruction> Walk(const Dockerfile& df, const BuildArgs& args, size_t stage = 0,
                                      V base_env = {}) {
  auto meta = ResolveMetaArgs(df, args);
  EXPECT_TRUE(meta) << meta.error().message();
  auto r = ExpandStage(df, stage, args, *meta, std::move(base_env));
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? std::move(r).value() : std::vector<ExpandedInstruction>{};
}

TEST(ExpandTest, ArgIsVisibleFromItsDeclarationOn) {
  // The reference's example: USER before ARG falls back, after it takes --build-arg.
  Dockerfile df = Parse("FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\n");
  auto out = Walk(df, {{"username", "what_user"}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].words, V{"some_user"});
  EXPECT_EQ(out[2].words, V{"what_user"});
}

TEST(ExpandTest, EnvWinsOverArg) {
  Dockerfile df = Parse("FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER\n");
  auto out = Walk(df, {{"CONT_IMG_VER", "v2.0.1"}});
  EXPECT_EQ(out[2].run_env, V{"CONT_IMG_VER=v1.0.0"});
  EXPECT_TRUE(out[2].history_args.empty());
  EXPECT_EQ(out[2].words, V{"echo $CONT_IMG_VER"});  // RUN is left to its shell

  Dockerfile df2 = Parse("FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\n");
  EXPECT_EQ(*Walk(df2, {{"CONT_IMG_VER", "v2.0.1"}})[1].pairs[0].value, "v2.0.1");
  EXPECT_EQ(*Walk(df2, {})[1].pairs[0].value, "v1.0.0");
}

TEST(ExpandTest, MetaArgsOnlyInFromUnlessRedeclared) {
  Dockerfile df = Parse(
      "ARG VERSION=latest\nARG REG=${VERSION}-reg\nFROM busybox:$VERSION\nENV A=x$VERSION\n"
      "ARG VERSION\nENV B=$VERSION\nFROM busybox:${REG}\n");
  auto meta = ResolveMetaArgs(df, {});
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->at("REG"), "latest-reg");
  EXPECT_EQ(ExpandFrom(df, 0, *meta)->base, "busybox:latest");
  EXPECT_EQ(ExpandFrom(df, 1, *meta)->base, "busybox:latest-reg");
  auto out = Walk(df, {});
  EXPECT_EQ(*out[0].pairs[0].value, "x");  // not declared in the stage: unset
  EXPECT_EQ(*out[1].pairs[0].value, "latest");
  EXPECT_EQ(*out[2].pairs[0].value, "latest");
  // --build-arg overrides a meta arg's default, in FROM and where redeclared.
  auto over = ResolveMetaArgs(df, {{"VERSION", "1.36"}});
  EXPECT_EQ(ExpandFrom(df, 0, *over)->base, "busybox:1.36");
  EXPECT_EQ(*Walk(df, {{"VERSION", "1.36"}})[2].pairs[0].value, "1.36");
}

TEST(ExpandTest, EnvPairsSeeTheValuesBeforeTheLine) {
  Dockerfile df = Parse("FROM x\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n"
                        "ENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy\nENV ONE TWO= THREE=world\n");
  StageExpander ex(df, {}, {}, {"PATH=/bin"});
  for (const auto& ins : df.stages[0].instructions) ASSERT_TRUE(ex.Expand(ins));
  EXPECT_EQ(ex.env(), (V{"PATH=/bin", "abc=bye", "def=hello", "ghi=bye", "MY_NAME=John Doe",
                         "MY_DOG=Rex The Dog", "MY_CAT=fluffy", "ONE=TWO= THREE=world"}));
}

TEST(ExpandTest, BaseEnvIsVisible) {
  Dockerfile df = Parse("FROM x\nENV PATH=$PATH:/opt/bin\nWORKDIR $HOME/app\n");
  auto out = Walk(df, {}, 0, {"PATH=/usr/bin", "HOME=/root"});
  EXPECT_EQ(*out[0].pairs[0].value, "/usr/bin:/opt/bin");
  EXPECT_EQ(out[1].words, V{"/root/app"});
}

TEST(ExpandTest, RunHistoryArgsAndProxies) {
  Dockerfile df = Parse("FROM x\nARG GREETING=hi\nARG B\nARG https_proxy\nRUN echo $GREETING\n");
  BuildArgs args = {{"HTTP_PROXY", "http://p:3128"}, {"https_proxy", "http://s"}, {"B", "2"}};
  auto out = Walk(df, args);
  const auto& run = out[3];
  // Sorted, declared ones only: an undeclared proxy arg stays out of history (docker's |N).
  EXPECT_EQ(run.history_args, (V{"B=2", "GREETING=hi", "https_proxy=http://s"}));
  EXPECT_EQ(run.run_env, (V{"B=2", "GREETING=hi", "HTTP_PROXY=http://p:3128", "https_proxy=http://s"}));
  // Proxies are usable in expansion without a declaration.
  Dockerfile df2 = Parse("FROM x\nLABEL p=$HTTP_PROXY\n");
  EXPECT_EQ(*Walk(df2, args)[0].pairs[0].value, "http://p:3128");
  EXPECT_EQ(UnconsumedBuildArgs(df2, {{"HTTP_PROXY", "x"}, {"NOPE", "y"}}), V{"NOPE"});
}

TEST(ExpandTest, WordsOfEachInstruction) {
  Dockerfile df = Parse(
      "FROM x\nENV P=443 U=app SRC=\"my dir\" SIG=KILL V=/data\n"
      "EXPOSE 80/tcp 53/UDP $P 8000-8001\n"
      "COPY --chown=$U:$U --chmod=755 [\"$SRC\", \"/dst/\"]\n"
      "ADD --chown=${U} a${P} /b\n"
      "STOPSIGNAL SIG$SIG\nVOLUME $V \"/other\"\nVOLUME [\"$V/x\"]\nUSER ${U}:${U}\n"
      "WORKDIR \"/a b\"\nCMD echo $U\nONBUILD COPY $SRC /x\n");
  auto out = Walk(df, {});
  EXPECT_EQ(out[1].words, (V{"80/tcp", "53/udp", "443/tcp", "8000/tcp", "8001/tcp"}));
  EXPECT_EQ(out[2].words, (V{"my dir", "/dst/"}));
  EXPECT_EQ(out[2].flags.at("chown"), "app:app");
  EXPECT_EQ(out[2].flags.at("chmod"), "755");
  EXPECT_EQ(out[3].words, (V{"a443", "/b"}));
  EXPECT_EQ(out[3].flags.at("chown"), "app");
  EXPECT_EQ(out[4].words, V{"SIGKILL"});
  EXPECT_EQ(out[5].words, (V{"/data", "/other"}));
  EXPECT_EQ(out[6].words, V{"/data/x"});
  EXPECT_EQ(out[7].words, V{"app:app"});
  EXPECT_EQ(out[8].words, V{"/a b"});
  EXPECT_EQ(out[9].words, V{"echo $U"});
  EXPECT_EQ(out[10].words, V{"COPY $SRC /x"});  // expanded when the trigger runs
}

TEST(ExpandTest, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"FROM x\nRUN a\nENV A=${B\n", "Dockerfile:3: syntax error: missing '}', in: ENV A=${B"},
      {"FROM x\nUSER ${U:?must be set}\n", "Dockerfile:2: U: must be set, in: USER ${U:?must be set}"},
      {"FROM x\nEXPOSE 80/xyz\n", "Dockerfile:2: invalid proto: xyz, in: EXPOSE 80/xyz"},
      {"FROM x\nEXPOSE http\n", "Dockerfile:2: invalid containerPort: http, in: EXPOSE http"},
      {"FROM x\nEXPOSE 90-80\n", "Dockerfile:2: invalid containerPort: 90-80, in: EXPOSE 90-80"},
      {"FROM x\nEXPOSE 70000\n", "Dockerfile:2: invalid containerPort: 70000, in: EXPOSE 70000"},
      {"FROM x\nSTOPSIGNAL SIGNOPE\n", "Dockerfile:2: Invalid signal: SIGNOPE, in: STOPSIGNAL SIGNOPE"},
      {"FROM x\nSTOPSIGNAL 0\n", "Dockerfile:2: Invalid signal: 0, in: STOPSIGNAL 0"},
      {"FROM x\nCOPY --chmod=999 a b\n", "Dockerfile:2: invalid chmod parameter: 999 (octal mode expected), in: COPY --chmod=999 a b"},
      {"FROM x\nWORKDIR $NONE\n", "Dockerfile:2: WORKDIR expands to an empty string, in: WORKDIR $NONE"},
      {"FROM x\nCOPY \"a b\" /c\n", "Dockerfile:2: unexpected end of statement while looking for matching double-quote, in: COPY \"a b\" /c"},
  };
  for (const auto& c : cases) {
    Dockerfile df = Parse(c.text);
    auto r = ExpandStage(df, 0, {}, {}, {});
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().message(), c.message) << c.text;
  }
  for (const char* sig : {"SIGTERM", "term", "9", "SIGRTMIN+3", "RTMAX-1"}) {
    Dockerfile df = Parse(std::string("FROM x\nSTOPSIGNAL ") + sig + "\n");
    EXPECT_TRUE(ExpandStage(df, 0, {}, {}, {})) << sig;
  }
  Dockerfile blank = Parse("ARG IMG\nFROM $IMG\n");
  auto from = ExpandFrom(blank, 0, *ResolveMetaArgs(blank, {}));
  ASSERT_FALSE(from);
  EXPECT_EQ(from.error().message(), "Dockerfile:2: base name ($IMG) should not be blank, in: FROM $IMG");
}

TEST(ExpandTest, StagesNeededForATarget) {
  Dockerfile df = Parse(
      "ARG BASE=base\nFROM busybox AS base\nFROM busybox AS unrelated\nFROM ${BASE} AS mid\n"
      "FROM busybox AS final\nCOPY --from=mid /a /a\nCOPY --from=0 /b /b\nFROM busybox AS other\n"
      "COPY --from=$X /c /c\n");
  auto meta = *ResolveMetaArgs(df, {});
  EXPECT_EQ(*StagesNeeded(df, "final", meta), (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(*StagesNeeded(df, "MID", meta), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(*StagesNeeded(df, "unrelated", meta), (std::vector<size_t>{1}));
  // The last stage names its source through a variable: every earlier stage is kept.
  EXPECT_EQ(*StagesNeeded(df, "", meta), (std::vector<size_t>{0, 1, 2, 3, 4}));
  auto bad = StagesNeeded(df, "nope", meta);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "failed to reach build target nope in Dockerfile");
}

}  // namespace
}  // namespace shale::build
