#pragma once

namespace shale::cli {
// Parses argv, runs the verb, prints errors once. Returns the process exit status.
int Main(int argc, char** argv);
}  // namespace shale::cli
