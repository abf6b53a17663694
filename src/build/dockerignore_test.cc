#include "build/dockerignore.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "util/fs.h"

namespace shale::build {
namespace {

using V = std::vector<std::string>;

TEST(DockerignoreTest, ReadCleansAndSkipsComments) {
  EXPECT_EQ(ReadDockerignore("\xEF\xBB\xBF# comment\n */temp*\n*/*/temp*\r\ntemp?\n/abs\n./rel//x/\n"
                             "! ./keep\n  # not a comment\n\n   \n/\nsub/../..\n"),
            (V{"*/temp*", "*/*/temp*", "temp?", "abs", "rel/x", "!keep", "# not a comment", "/", ".."}));
  EXPECT_EQ(CleanPath(""), ".");
  EXPECT_EQ(CleanPath("a/./b/../c//"), "a/c");
  EXPECT_EQ(CleanPath("/../x"), "/x");
  EXPECT_EQ(CleanPath("../../x"), "../../x");
}

struct MatchCase {
  V patterns;
  const char* path;
  bool excluded;
};

TEST(DockerignoreTest, MatchesLikeDocker) {
  MatchCase cases[] = {
      // The reference's examples.
      {{"*/temp*"}, "somedir/temporary.txt", true},
      {{"*/temp*"}, "somedir/temp", true},
      {{"*/temp*"}, "temp", false},
      {{"*/temp*"}, "a/b/temp", false},
      {{"*/*/temp*"}, "somedir/subdir/temporary.txt", true},
      {{"*/*/temp*"}, "somedir/temporary.txt", false},
      {{"temp?"}, "tempa", true},
      {{"temp?"}, "temp", false},
      {{"temp?"}, "tempab", false},
      {{"**/*.go"}, "a.go", true},
      {{"**/*.go"}, "x/y/z.go", true},
      {{"**/*.go"}, "a.goo", false},
      {{"*.md", "!README.md"}, "README.md", false},
      {{"*.md", "!README.md"}, "other.md", true},
      {{"*.md", "!README*.md", "README-secret.md"}, "README-secret.md", true},
      {{"*.md", "!README*.md", "README-secret.md"}, "README-x.md", false},
      {{"*.md", "README-secret.md", "!README*.md"}, "README-secret.md", false},
      // A parent directory's match excludes everything below it.
      {{"dir"}, "dir/a/b", true},
      {{"dir"}, "dirx", false},
      {{"dir/**"}, "dir/x/y", true},
      {{"dir/**"}, "dir", false},
      {{"**"}, "anything/at/all", true},
      {{"**/keep"}, "keep", true},
      {{"**/keep"}, "a/b/keep", true},
      {{"a/**/b"}, "a/b", true},
      {{"a/**/b"}, "a/x/y/b", true},
      {{"a/**/b"}, "a/x/y/bc", false},
      {{"[a-c].txt"}, "b.txt", true},
      {{"[a-c].txt"}, "d.txt", false},
      {{"[^a].txt"}, "b.txt", true},
      {{"\\*.txt"}, "*.txt", true},
      {{"\\*.txt"}, "a.txt", false},
      {{"a.b"}, "axb", false},  // '.' is literal
      {{"dir", "!dir/keep"}, "dir/keep", false},
      {{"dir", "!dir/keep"}, "dir/keep/x", false},
      {{"dir", "!dir/keep"}, "dir/drop", true},
      {{"!x", "*"}, "x", true},  // last match wins
  };
  for (const auto& c : cases) {
    auto m = IgnoreMatcher::Create(c.patterns);
    ASSERT_TRUE(m) << c.patterns[0];
    EXPECT_EQ(m->Excluded(c.path), c.excluded) << c.patterns[0] << " ... on " << c.path;
  }
}

TEST(DockerignoreTest, LeadingSlashAndDotAreRelativeToTheContext) {
  auto m = IgnoreMatcher::Create(ReadDockerignore("/abs\n./rel/x\n"));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->Excluded("abs"));
  EXPECT_TRUE(m->Excluded("rel/x/y"));
  EXPECT_FALSE(m->Excluded("sub/abs"));
}

TEST(DockerignoreTest, BadPatterns) {
  auto bang = IgnoreMatcher::Create({"!"});
  ASSERT_FALSE(bang);
  EXPECT_EQ(bang.error().message(), ".dockerignore: illegal exclusion pattern: \"!\"");
  auto bracket = IgnoreMatcher::Create({"[abc"});
  ASSERT_FALSE(bracket);
  EXPECT_EQ(bracket.error().code(), Errc::kInvalidArgument);
  EXPECT_FALSE(IgnoreMatcher::Create({"abc\\"}));
}

class ContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shale-ctx-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    outside_ = root_ + "-outside";
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
    Mk("outside-secret", outside_ + "/secret");
  }
  void TearDown() override {
    (void)RemoveTreeAbs(root_);
    (void)RemoveTreeAbs(outside_);
  }
  void Mk(std::string_view rel, std::string abs = "") {
    if (abs.empty()) abs = root_ + "/" + std::string(rel);
    ASSERT_TRUE(MakeDirsAbs(Dirname(abs)));
    ASSERT_TRUE(WriteFileAtomic(abs, "x"));
  }
  V List(const V& patterns) {
    auto m = IgnoreMatcher::Create(patterns);
    EXPECT_TRUE(m);
    auto dir = Dir::Open(root_);
    EXPECT_TRUE(dir);
    auto r = ListContext(*dir, *m);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    V out;
    if (r) {
      for (const auto& e : *r) out.push_back(e.path + (e.type == EntryType::kDir ? "/" : e.type == EntryType::kSymlink ? "@" : ""));
    }
    return out;
  }
  std::string root_, outside_;
};

TEST_F(ContextTest, ExcludedDirectoryStillYieldsReincludedFiles) {
  for (const char* f : {"Dockerfile", ".dockerignore", "a.txt", "dir/keep", "dir/drop", "dir/sub/x",
                        "node_modules/m", "src/main.c"}) {
    Mk(f);
  }
  ASSERT_EQ(symlink(outside_.c_str(), (root_ + "/escape").c_str()), 0);
  EXPECT_EQ(List({}), (V{".dockerignore", "Dockerfile", "a.txt", "dir/", "dir/drop", "dir/keep", "dir/sub/",
                         "dir/sub/x", "escape@", "node_modules/", "node_modules/m", "src/", "src/main.c"}));
  // "dir" is excluded but walked for "!dir/keep"; the directory itself is not listed, and
  // the symlink to a directory outside is listed as a link, never followed.
  EXPECT_EQ(List({"dir", "!dir/keep", "node_modules", "*.txt"}),
            (V{".dockerignore", "Dockerfile", "dir/keep", "escape@", "src/", "src/main.c"}));
  // Without exceptions an excluded directory is skipped whole. The Dockerfile and
  // .dockerignore are excluded from COPY's view like any file.
  EXPECT_EQ(List({"*", "!src"}), (V{"src/", "src/main.c"}));
  EXPECT_EQ(List({"**"}), V{});
}

}  // namespace
}  // namespace shale::build
