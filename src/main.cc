#include "cli/main.h"

int main(int argc, char** argv) { return shale::cli::Main(argc, argv); }
