#include "cli/format_template.h"

#include "util/strings.h"

namespace shale::cli {
namespace {

// ".State.Pid" -> the value, or nullptr when a step is missing.
const nlohmann::json* Lookup(const nlohmann::json& root, std::string_view path) {
  if (path == ".") return &root;
  const nlohmann::json* cur = &root;
  for (const std::string& key : Split(path.substr(1), '.')) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

}  // namespace

Result<std::string> RenderTemplate(std::string_view tmpl, const nlohmann::json& value) {
  std::string out;
  size_t pos = 0;
  while (pos < tmpl.size()) {
    size_t open = tmpl.find("{{", pos);
    if (open == std::string_view::npos) {
      out.append(tmpl.substr(pos));
      break;
    }
    out.append(tmpl.substr(pos, open - pos));
    size_t close = tmpl.find("}}", open + 2);
    if (close == std::string_view::npos)
      return Error(Errc::kInvalidArgument,
                   "template \"" + std::string(tmpl) + "\": unclosed action (missing \"}}\")");
    std::string_view action = Trim(tmpl.substr(open + 2, close - open - 2));
    bool as_json = false;
    if (StartsWith(action, "json ")) {
      as_json = true;
      action = Trim(action.substr(5));
    }
    if (action.empty() || action[0] != '.' || action.find(' ') != std::string_view::npos)
      return Error(Errc::kInvalidArgument,
                   "template \"" + std::string(tmpl) + "\": cannot read action \"" +
                       std::string(action) + "\" (shale supports {{.Field.Sub}} and {{json .Field}})");
    const nlohmann::json* v = Lookup(value, action);
    if (!v) out += "<no value>";
    else if (v->is_string() && !as_json) out += v->get<std::string>();
    else out += v->dump();
    pos = close + 2;
  }
  return out;
}

}  // namespace shale::cli
