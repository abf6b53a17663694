// Placeholder registration until the image verbs land (replaced by the image module owner).
#include "cli/context.h"
namespace shale::cli {
void RegisterImageCommands(CLI::App&, Context&) {}
}  // namespace shale::cli
