// Placeholder registration until the container verbs land (replaced by the container owner).
#include "cli/context.h"
namespace shale::cli {
void RegisterContainerCommands(CLI::App&, Context&) {}
}  // namespace shale::cli
