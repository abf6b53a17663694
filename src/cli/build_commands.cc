// build: parses the flags, reads the Dockerfile, calls build::Build, prints the id.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "build/builder.h"
#include "cli/context.h"
#include "container/container.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::cli {
namespace {

constexpr size_t kMaxDockerfile = 16 << 20;

Result<std::map<std::string, std::string>> Pairs(const std::vector<std::string>& kvs,
                                                 std::string_view flag, bool need_eq) {
  std::map<std::string, std::string> out;
  for (const std::string& kv : kvs) {
    size_t eq = kv.find('=');
    if (eq == 0 || (need_eq && eq == std::string::npos))
      return Error(Errc::kInvalidArgument,
                   std::string(flag) + " " + kv + ": expected KEY=VALUE");
    if (eq == std::string::npos) {
      // docker: --build-arg K takes K's value from the environment (and is ignored if unset).
      if (const char* v = getenv(kv.c_str())) out[kv] = v;
      continue;
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

}  // namespace

void RegisterBuildCommands(CLI::App& app, Context& ctx) {
  if (!ctx.Wants("build")) return;
  struct Opts {
    std::string context;
    std::vector<std::string> tags, build_args, labels;
    std::string file, target, network = "bridge", iidfile;
    bool no_cache = false, pull = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "build", "Build an image from a Dockerfile (docker's classic builder: one image per step)");
  sub->add_option("context", o->context, "CONTEXT directory, or - for a Dockerfile on stdin")
      ->required();
  sub->add_option("-t,--tag", o->tags, "Name and optionally a tag (NAME[:TAG]); repeatable")
      ->allow_extra_args(false);
  sub->add_option("-f,--file", o->file, "Dockerfile (default CONTEXT/Dockerfile; - for stdin)");
  sub->add_option("--build-arg", o->build_args, "Set a build-time variable (K=V); repeatable")
      ->allow_extra_args(false);
  sub->add_option("--target", o->target, "Build only up to this stage");
  sub->add_flag("--no-cache", o->no_cache, "Do not use the cache");
  sub->add_flag("--pull", o->pull, "Pull the FROM images even if present");
  sub->add_option("--network", o->network, "Network of the RUN steps: bridge (default), host or none");
  sub->add_option("--label", o->labels, "Set an image label (K=V); repeatable")
      ->allow_extra_args(false);
  sub->add_flag("-q,--quiet", o->quiet, "Print only the image id");
  sub->add_option("--iidfile", o->iidfile, "Write the image id to this file");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      auto fail = [](Error e) {
        return ReportError(e, e.code() == Errc::kCancelled ? 130 : 1);
      };
      build::BuildOptions bo;
      bo.tags = o->tags;
      bo.target = o->target;
      bo.no_cache = o->no_cache;
      bo.pull = o->pull;
      bo.network = o->network;
      bo.quiet = o->quiet;
      auto args = Pairs(o->build_args, "--build-arg", false);
      if (!args) return fail(std::move(args).error());
      for (auto& [k, v] : *args) bo.build_args[k] = v;
      auto labels = Pairs(o->labels, "--label", true);
      if (!labels) return fail(std::move(labels).error());
      bo.labels = *labels;

      std::string file = o->file;
      if (o->context == "-") {
        if (!file.empty() && file != "-")
          return fail(Error(Errc::kInvalidArgument,
                            "-f " + file + ": the context is -, the Dockerfile comes on stdin"));
        file = "-";
      } else {
        if (!IsDirectory(o->context))
          return fail(Error(Errc::kInvalidArgument,
                            "unable to prepare context: path \"" + o->context +
                                "\" not found or not a directory"));
        bo.context_dir = o->context;
        if (file.empty()) file = o->context + "/Dockerfile";
      }
      if (file == "-") {
        auto text = ReadAll(0, "stdin");
        if (!text) return fail(std::move(text).error());
        bo.dockerfile_text = std::move(*text);
        bo.dockerfile_name = "Dockerfile";
      } else {
        auto text = ReadRegularFile(file, kMaxDockerfile);
        if (!text)
          return fail(std::move(text).error().Wrap("unable to read the Dockerfile " + file));
        bo.dockerfile_text = std::move(*text);
        bo.dockerfile_name = o->file.empty() ? "Dockerfile" : o->file;
      }

      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return fail(std::move(mgr).error());
      auto res = build::Build(**mgr, bo);
      if (!res) return fail(std::move(res).error());
      if (o->quiet) std::cout << res->image_id << "\n" << std::flush;
      if (!o->iidfile.empty())
        if (auto w = WriteFileAtomic(o->iidfile, res->image_id, 0644); !w)
          return fail(std::move(w).error().Wrap("--iidfile"));
      return 0;
    };
  });
}

}  // namespace shale::cli
