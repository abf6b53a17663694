// `--format` for inspect: the subset of Go templates that docker users type most:
// literal text, {{.A.B}} (a field; strings print bare, anything else as JSON) and
// {{json .A.B}}. A missing field prints "<no value>", as Go's templates do.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace shale::cli {

// kInvalidArgument naming the template and the action it cannot read.
Result<std::string> RenderTemplate(std::string_view tmpl, const nlohmann::json& value);

}  // namespace shale::cli
