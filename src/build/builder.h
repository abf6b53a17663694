// docker build (the classic builder): each stage a chain of images, one per instruction;
// RUN in a real container, COPY/ADD into a container's merged view through rooted Dirs, the
// layer of either being the container's upper dir committed as `commit` does it. Uses
// container::Manager and image::ImageStore through their APIs only.
//
// Failures leave nothing: a failed or interrupted (SIGINT/SIGTERM) step removes its
// container, an unfinished commit is undone by the store's journal, and nothing is tagged;
// the steps before it stay cached. Containers of a build killed with SIGKILL (named
// "shale-build-*") are removed by the next build.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "build/expand.h"
#include "container/container.h"
#include "util/error.h"

namespace shale::build {

struct BuildOptions {
  std::string context_dir;            // "" = no context (Dockerfile on stdin)
  std::string dockerfile_text;
  std::string dockerfile_name = "Dockerfile";  // in messages
  std::vector<std::string> tags;      // -t, as given
  BuildArgs build_args;
  std::string target;                 // --target ("" = the last stage)
  bool no_cache = false;
  bool pull = false;
  std::string network = "bridge";     // bridge (docker's default) | host | none
  std::map<std::string, std::string> labels;   // --label: a LABEL step after the last
  bool quiet = false;                 // -q: no step lines, no RUN output
  int out_fd = 1;                     // step lines and RUN output
};

struct BuildResult {
  std::string image_id;               // "sha256:..."
  std::vector<std::string> tags;      // as tagged ("name:tag")
};

// Runs the build. Syntax and expansion errors come before any work, as
// "Dockerfile:LINE: ...". A RUN that exits non-zero is kInvalidArgument
// "The command '/bin/sh -c ...' returned a non-zero code: N"; SIGINT/SIGTERM give
// kCancelled. On success the image is tagged with every -t.
Result<BuildResult> Build(container::Manager& mgr, const BuildOptions& opts);

}  // namespace shale::build
