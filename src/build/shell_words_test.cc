#include "build/shell_words.h"

#include <gtest/gtest.h>

namespace shale::build {
namespace {

const VarMap kEnv = {{"V", "val"}, {"EMPTY", ""}, {"SP", "a b  c"}, {"PATHV", "/usr/local/bin:/usr/bin"}};

TEST(ShellWordsTest, ExpandsEachFormLikeDocker) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"$V", "val"},
      {"${V}", "val"},
      {"x${V}y", "xvaly"},
      {"$UNSET", ""},
      {"${UNSET}", ""},
      {"$", "$"},
      {"a$", "a$"},
      {"$1", ""},
      {"${V:-w}", "val"},
      {"${EMPTY:-w}", "w"},
      {"${UNSET:-w}", "w"},
      {"${V-w}", "val"},
      {"${EMPTY-w}", ""},
      {"${UNSET-w}", "w"},
      {"${V:+w}", "w"},
      {"${EMPTY:+w}", ""},
      {"${UNSET:+w}", ""},
      {"${V+w}", "w"},
      {"${EMPTY+w}", "w"},
      {"${UNSET+w}", ""},
      {"${V:?msg}", "val"},
      {"${EMPTY?msg}", ""},
      {"${UNSET:-${V}}", "val"},  // nested expansion in the word
      {"${UNSET:-'a b'}", "a b"},
      {"${PATHV#*:}", "/usr/bin"},
      {"${PATHV##*/}", "bin"},
      {"${PATHV%:*}", "/usr/local/bin"},
      {"${PATHV%%/*}", ""},
      {"${PATHV/usr/opt}", "/opt/local/bin:/usr/bin"},
      {"${PATHV//usr/opt}", "/opt/local/bin:/opt/bin"},
      // Quotes and escapes (the reference's examples).
      {"'$V'", "$V"},
      {"\"$V\"", "val"},
      {"\\$V", "$V"},
      {"\\${V}", "${V}"},
      {"\"\\$V\"", "$V"},
      {"\"a\\b\"", "a\\b"},  // only " $ and \ are escapes inside "..."
      {"\"a\\\"b\"", "a\"b"},
      {"'a\\b'", "a\\b"},
      {"a\\ b", "a b"},
      {"abc\\", "abc"},  // an escape at the very end vanishes
      {"\"$SP\"", "a b  c"},
      {"$SP", "a b  c"},  // one word: ProcessWord never splits
  };
  Lexer lex;
  for (const auto& c : cases) {
    auto r = lex.ProcessWord(c.in, kEnv);
    ASSERT_TRUE(r) << c.in << ": " << r.error().message();
    EXPECT_EQ(*r, c.out) << c.in;
  }
}

TEST(ShellWordsTest, BacktickEscape) {
  Lexer lex('`');
  EXPECT_EQ(*lex.ProcessWord("`$V", kEnv), "$V");
  EXPECT_EQ(*lex.ProcessWord("c:\\dir", kEnv), "c:\\dir");  // '\' is plain with escape=`
  EXPECT_EQ(*lex.ProcessWord("\"a`\"b\"", kEnv), "a\"b");
}

TEST(ShellWordsTest, ErrorsAreValues) {
  struct Case {
    const char* in;
    const char* message;
  } cases[] = {
      {"'abc", "unexpected end of statement while looking for matching single-quote"},
      {"\"abc", "unexpected end of statement while looking for matching double-quote"},
      {"${V", "syntax error: missing '}'"},
      {"${", "syntax error: missing '}'"},
      {"${}", "syntax error: bad substitution"},
      {"${:-x}", "syntax error: bad substitution"},
      {"${V:=x}", "unsupported modifier (=) in substitution"},
      {"${V!}", "unsupported modifier (!) in substitution"},
      {"${UNSET:?}", "UNSET: is not allowed to be unset"},
      {"${EMPTY:?}", "EMPTY: is not allowed to be empty"},
      {"${UNSET?set it}", "UNSET: set it"},
      {"${V:-abc", "syntax error: missing '}'"},
  };
  Lexer lex;
  for (const auto& c : cases) {
    auto r = lex.ProcessWord(c.in, kEnv);
    ASSERT_FALSE(r) << c.in << " gave " << *r;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    EXPECT_EQ(r.error().message(), c.message) << c.in;
  }
}

TEST(ShellWordsTest, ProcessWordsSplitsUnquotedExpansionsOnly) {
  Lexer lex;
  using V = std::vector<std::string>;
  EXPECT_EQ(*lex.ProcessWords("80 $SP", kEnv), (V{"80", "a", "b", "c"}));
  EXPECT_EQ(*lex.ProcessWords("\"$SP\" x", kEnv), (V{"a b  c", "x"}));
  EXPECT_EQ(*lex.ProcessWords("a\\ b c", kEnv), (V{"a b", "c"}));
  EXPECT_EQ(*lex.ProcessWords("  ", kEnv), V{});
}

}  // namespace
}  // namespace shale::build
