#include "cli/main.h"

#include <cstdlib>
#include <string>
#include <string_view>

#include <openssl/crypto.h>
#include <iostream>

#include "cli/context.h"
#include "container/trace.h"
#include "util/log.h"

namespace shale::cli {

int ReportError(const Error& e, int status) {
  LogError(e.message());
  return status;
}

namespace {

// The verb on the command line, read before CLI11 parses it (global options skipped); ""
// when there is none or an option comes first (--help, --version, a wrong flag).
std::string VerbOf(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--root") {
      ++i;
      continue;
    }
    if (a.starts_with("--root=") || a == "--debug" || a == "-D") continue;
    if (a.empty() || a[0] == '-') return "";
    return std::string(a);
  }
  return "";
}

void RegisterCommands(CLI::App& app, Context& ctx) {
  RegisterImageCommands(app, ctx);
  RegisterContainerCommands(app, ctx);
  RegisterRegistryCommands(app, ctx);
  RegisterBuildCommands(app, ctx);
  RegisterNetworkCommands(app, ctx);
  RegisterPruneCommands(app, ctx);
}

}  // namespace

int Main(int argc, char** argv) {
  container::TracePhase("main");
  // shale uses OpenSSL for sha256 only: skip reading openssl.cnf (0.3 ms on every command)
  // and the tables of every cipher and digest by name, which the default init fills (another
  // 0.3 ms: EVP_sha256() is fetched from the default provider without them).
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
                          OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
                      nullptr);
  Context ctx;
  const char* env_root = getenv("SHALE_ROOT");
  ctx.root = env_root && *env_root ? env_root : "/var/lib/shale";
  ctx.run_root = "/run/shale";

  CLI::App app{"shale: a daemonless container engine (images as overlay2 layers, containers "
               "in namespaces and cgroups)",
               "shale"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  app.add_option("--root", ctx.root, "Store directory (env SHALE_ROOT)");
  app.add_flag("--debug,-D", ctx.debug, "Print debug messages");
  app.set_version_flag("--version,-v", "shale 0.1.0");

  ctx.only_verb = VerbOf(argc, argv);
  RegisterCommands(app, ctx);
  if (!ctx.only_verb.empty() && app.get_subcommands([](CLI::App*) { return true; }).empty()) {
    ctx.only_verb.clear();  // not a verb: the whole tree, for CLI11's error and help
    RegisterCommands(app, ctx);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // docker exits 125 on a usage error; --help and --version exit 0.
    return rc == 0 ? 0 : 125;
  }
  if (ctx.debug) SetLogLevel(LogLevel::kDebug);
  container::TracePhase("parse the command line");
  // The store root is used as a prefix everywhere; make it absolute once.
  if (!ctx.root.empty() && ctx.root[0] != '/') {
    char* cwd = getcwd(nullptr, 0);
    if (cwd) {
      ctx.root = std::string(cwd) + "/" + ctx.root;
      free(cwd);
    }
  }
  if (!ctx.action) return 0;
  return ctx.action();
}

}  // namespace shale::cli
