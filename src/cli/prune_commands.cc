// container prune, image prune, system prune: docker's clean-up verbs.
//
// What goes: stopped containers (created or exited); user networks no container uses
// (system prune; `network prune` alone is in network_commands.cc); dangling images (untagged: the
// builder's cache images and images a tag moved away from), or with -a every image no
// container uses; and the build cache entries whose image is gone. Images are removed
// through ImageStore::Remove, so a layer another image or a container stands on is kept.
#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "build/cache.h"
#include "cli/context.h"
#include "container/container.h"
#include "image/image_store.h"
#include "util/strings.h"

namespace shale::cli {
namespace {

int Fail(std::string_view context, Error e) { return ReportError(std::move(e).Wrap(context)); }

// docker's prompt; anything but y/Y (or EOF) declines.
bool Confirm(const std::string& warning) {
  std::cout << "WARNING! " << warning << "\nAre you sure you want to continue? [y/N] "
            << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y";
}

struct Pruned {
  std::vector<std::string> containers;
  std::vector<std::string> networks;
  std::vector<std::string> image_lines;  // "untagged: …", "deleted: sha256:…"
  int64_t reclaimed = 0;
};

Result<void> PruneContainers(container::Manager& mgr, Pruned& out) {
  for (const auto& s : TRY(mgr.List(true))) {
    if (s.state.status != "exited" && s.state.status != "created") continue;
    // A container that starts in between is refused by Remove (kBusy): then it stays.
    if (auto r = mgr.Remove(s.record.id, false); !r) {
      if (r.error().code() == Errc::kBusy || r.error().code() == Errc::kNotFound) continue;
      return std::move(r).error();
    }
    out.containers.push_back(s.record.id);
  }
  return Ok();
}

// Images some container (running or not) was made from: prune leaves them, tags and all.
Result<std::set<std::string>> ImagesInUse(container::Manager& mgr) {
  std::set<std::string> used;
  for (const auto& s : TRY(mgr.List(true))) used.insert(s.record.image_id);
  return used;
}

// REQUIRES the store lock (exclusive).
Result<void> PruneImages(image::ImageStore& store, bool all, const std::set<std::string>& used,
                         Pruned& out) {
  std::map<std::string, int64_t> layer_size;  // chain id -> its size, for the reclaimed sum
  std::vector<image::Image> candidates;
  for (const auto& img : TRY(store.List())) {
    for (size_t i = 0; i < img.chain_ids.size() && i < img.layer_sizes.size(); ++i)
      layer_size[img.chain_ids[i].str()] = img.layer_sizes[i];
    if ((all || img.repo_tags.empty()) && !used.count(img.id.str())) candidates.push_back(img);
  }
  for (const auto& img : candidates) {
    // By tag, one at a time (the last one deletes the image); untagged ones by id. A
    // conflict (a container uses it) leaves the image as it is.
    std::vector<std::string> refs = img.repo_tags;
    if (refs.empty()) refs.push_back(img.id.str());
    for (const auto& ref : refs) {
      auto lines = store.Remove(ref, false);
      if (!lines) {
        if (lines.error().code() == Errc::kBusy) break;
        return std::move(lines).error().Wrap("image " + img.id.Short());
      }
      for (const auto& l : *lines) {
        std::string low = l;
        if (StartsWith(low, "Untagged: ")) low = "untagged: " + l.substr(10);
        if (StartsWith(low, "Deleted: ")) {
          low = "deleted: " + l.substr(9);
          if (auto it = layer_size.find(l.substr(9)); it != layer_size.end())
            out.reclaimed += it->second;
        }
        out.image_lines.push_back(low);
      }
    }
  }
  // Cache entries of images that are gone would only be misses: drop them.
  build::BuildCache cache(store.root() + "/image/overlay2/buildcache");
  TRY(cache.DropIf([&](const std::string& image_id) {
    auto d = Digest::Parse(image_id);
    return !d || !store.Resolve(d->str());
  }));
  return Ok();
}

void Print(const Pruned& p, bool containers, bool images) {
  if (containers && !p.containers.empty()) {
    std::cout << "Deleted Containers:\n";
    for (const auto& id : p.containers) std::cout << id << "\n";
    std::cout << "\n";
  }
  if (!p.networks.empty()) {
    std::cout << "Deleted Networks:\n";
    for (const auto& n : p.networks) std::cout << n << "\n";
    std::cout << "\n";
  }
  if (images && !p.image_lines.empty()) {
    std::cout << "Deleted Images:\n";
    for (const auto& l : p.image_lines) std::cout << l << "\n";
    std::cout << "\n";
  }
  std::cout << "Total reclaimed space: " << HumanSize(p.reclaimed) << "\n";
}

struct Opts {
  bool all = false, force = false;
};

void AddContainerPrune(CLI::App& group, Context& ctx) {
  auto o = std::make_shared<Opts>();
  auto* sub = group.add_subcommand("prune", "Remove all stopped containers");
  sub->add_flag("-f,--force", o->force, "Do not prompt for confirmation");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      if (!o->force && !Confirm("This will remove all stopped containers.")) return 0;
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail("container prune", std::move(mgr).error());
      Pruned p;
      if (auto r = PruneContainers(**mgr, p); !r) return Fail("container prune", std::move(r).error());
      Print(p, true, false);
      return 0;
    };
  });
}

void AddImagePrune(CLI::App& group, Context& ctx) {
  auto o = std::make_shared<Opts>();
  auto* sub = group.add_subcommand("prune", "Remove unused images");
  sub->add_flag("-a,--all", o->all, "Remove all images no container uses, not just dangling ones");
  sub->add_flag("-f,--force", o->force, "Do not prompt for confirmation");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      if (!o->force && !Confirm(o->all ? "This will remove all images without at least one "
                                         "container associated to them."
                                       : "This will remove all dangling images."))
        return 0;
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail("image prune", std::move(mgr).error());
      auto used = ImagesInUse(**mgr);
      if (!used) return Fail("image prune", std::move(used).error());
      auto lock = (*mgr)->images().Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail("image prune", std::move(lock).error());
      Pruned p;
      if (auto r = PruneImages((*mgr)->images(), o->all, *used, p); !r)
        return Fail("image prune", std::move(r).error());
      Print(p, false, true);
      return 0;
    };
  });
}

void AddSystemPrune(CLI::App& group, Context& ctx) {
  auto o = std::make_shared<Opts>();
  auto* sub = group.add_subcommand("prune", "Remove stopped containers, unused images and build cache");
  sub->add_flag("-a,--all", o->all, "Remove all unused images, not just dangling ones");
  sub->add_flag("-f,--force", o->force, "Do not prompt for confirmation");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      std::string warning = "This will remove:\n  - all stopped containers\n  - all networks not used by at least "
                            "one container\n  - all " +
                            std::string(o->all ? "images without at least one container "
                                                 "associated to them"
                                               : "dangling images") +
                            "\n  - all dangling build cache\n";
      if (!o->force && !Confirm(warning)) return 0;
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail("system prune", std::move(mgr).error());
      Pruned p;
      if (auto r = PruneContainers(**mgr, p); !r) return Fail("system prune", std::move(r).error());
      auto nets = (*mgr)->networks().Prune();
      if (!nets) return Fail("system prune", std::move(nets).error());
      p.networks = *nets;
      auto used = ImagesInUse(**mgr);
      if (!used) return Fail("system prune", std::move(used).error());
      auto lock = (*mgr)->images().Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail("system prune", std::move(lock).error());
      if (auto r = PruneImages((*mgr)->images(), o->all, *used, p); !r)
        return Fail("system prune", std::move(r).error());
      Print(p, true, true);
      return 0;
    };
  });
}

}  // namespace

void RegisterPruneCommands(CLI::App& app, Context& ctx) {
  if (ctx.Wants("container")) {
    auto* containers = app.add_subcommand("container", "Manage containers");
    containers->require_subcommand(1);
    AddContainerPrune(*containers, ctx);
  }
  if (ctx.Wants("image")) {
    auto* images = app.add_subcommand("image", "Manage images");
    images->require_subcommand(1);
    AddImagePrune(*images, ctx);
  }
  if (ctx.Wants("system")) {
    auto* system = app.add_subcommand("system", "Manage shale");
    system->require_subcommand(1);
    AddSystemPrune(*system, ctx);
  }
}

}  // namespace shale::cli
