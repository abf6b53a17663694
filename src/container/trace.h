// Phase timing of the start path, printed with --debug:
//   shale: debug: [  1.234 ms +0.210] create: init layer
// The clock starts at the first call (Main makes it first). Costs one branch when not
// debugging.
#pragma once

#include <string_view>

namespace shale::container {

void TracePhase(std::string_view what);

}  // namespace shale::container
