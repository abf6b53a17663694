#include "cli/format_template.h"

#include <gtest/gtest.h>

namespace shale::cli {
namespace {

const nlohmann::json kObj = nlohmann::json::parse(R"({
  "Id": "abc", "State": {"Pid": 42, "Running": true, "Status": "running"},
  "GraphDriver": {"Data": {"UpperDir": "/u"}}, "Args": ["a", "b"]})");

TEST(RenderTemplate, FieldsTextAndJson) {
  EXPECT_EQ(*RenderTemplate("{{.State.Pid}}", kObj), "42");
  EXPECT_EQ(*RenderTemplate("{{ .GraphDriver.Data.UpperDir }}", kObj), "/u");
  EXPECT_EQ(*RenderTemplate("id={{.Id}} running={{.State.Running}}", kObj), "id=abc running=true");
  EXPECT_EQ(*RenderTemplate("{{json .State.Status}}", kObj), "\"running\"");
  EXPECT_EQ(*RenderTemplate("{{json .Args}}", kObj), "[\"a\",\"b\"]");
  EXPECT_EQ(*RenderTemplate("{{.Nope.Deeper}}", kObj), "<no value>");
  EXPECT_EQ(*RenderTemplate("plain", kObj), "plain");
}

TEST(RenderTemplate, RefusesWhatItCannotRead) {
  auto r = RenderTemplate("{{.State.Pid", kObj);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_FALSE(RenderTemplate("{{range .Args}}{{.}}{{end}}", kObj));
  EXPECT_FALSE(RenderTemplate("{{index .Args 0}}", kObj));
}

}  // namespace
}  // namespace shale::cli
