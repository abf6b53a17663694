// Image verbs: import, load, save, images, tag, rmi, history, mount, umount.
// Each parses, calls image::ImageStore, prints. Errors: "shale: <verb> <object>: <reason>".
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <set>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "image/image_store.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::cli {
namespace {

using image::ImageStore;

Result<std::unique_ptr<ImageStore>> OpenStore(const Context& ctx) {
  return ImageStore::Open(ctx.root);
}

// docker's tabwriter: minwidth 10, padding 3, last column unpadded.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line.append(std::max<size_t>(10, w[i] + 3) - r[i].size(), ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

std::string ShortId(const Digest& d) { return d.hex().substr(0, 12); }

// docker's stringutils.Ellipsis.
std::string Ellipsis(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return s.substr(0, n - 1) + "\u2026";
}

// Go's time.Time.String() in UTC, as docker's --format json prints CreatedAt.
std::string DockerTime(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
  return buf;
}

int Fail(std::string_view context, Error e) { return ReportError(std::move(e).Wrap(context)); }

// A pipe on stdin may be fed by another shale command on this store (`shale save i |
// shale load`, `shale export c | shale import - x`) that holds the store lock until its
// output is read: taking the lock first would deadlock, and holding it while a slow pipe
// trickles in would block every other command. So a non-file input is read to its end into
// an anonymous file in the store's tmp/ first, and the lock is taken only for the commit.
Result<void> SpoolStdinIfStream(const ImageStore& store) {
  struct stat st;
  if (::fstat(STDIN_FILENO, &st) != 0) return Error::FromErrno(errno, "fstat stdin");
  if (S_ISREG(st.st_mode)) return Ok();
  UniqueFd spool = TRY(SpoolToAnonymousFile(STDIN_FILENO, store.root() + "/tmp", "spool-",
                                            "stdin"));
  if (::dup2(spool.get(), STDIN_FILENO) < 0) return Error::FromErrno(errno, "dup2 spool");
  return Ok();
}

void AddImport(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string source, tag, message;
    std::vector<std::string> changes;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("import", "Create an image from a tarball, a directory or stdin (-)");
  sub->add_option("source", o->source, "TARBALL, DIR or - (stdin)")->required();
  sub->add_option("reference", o->tag, "REPOSITORY[:TAG]");
  sub->add_option("-c,--change", o->changes, "Apply a Dockerfile instruction (CMD, ENV, ...)")
      ->allow_extra_args(false);  // one per -c, so the positionals after it stay positional
  sub->add_option("-m,--message", o->message, "Commit message for the imported image");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      std::string what = "import " + o->source;
      auto store = OpenStore(ctx);
      if (!store) return Fail(what, std::move(store).error());
      if (o->source == "-")
        if (auto r = SpoolStdinIfStream(**store); !r) return Fail(what, std::move(r).error());
      auto lock = (*store)->Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail(what, std::move(lock).error());
      image::ImportOptions io{o->tag, o->changes, o->message};
      auto img = (*store)->Import(o->source, io);
      if (!img) return Fail(what, std::move(img).error());
      std::cout << img->id.str() << "\n";
      return 0;
    };
  });
}

void AddLoad(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string input;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("load", "Load images from a docker or OCI archive");
  sub->add_option("-i,--input", o->input, "Read from a tar archive file instead of stdin");
  sub->add_flag("-q,--quiet", o->quiet, "Suppress the load progress");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      std::string name = o->input.empty() ? "stdin" : o->input;
      std::string what = "load " + name;
      if (o->quiet) setenv("SHALE_NO_PROGRESS", "1", 1);
      UniqueFd in;
      int fd = STDIN_FILENO;
      if (!o->input.empty()) {
        int f = ::open(o->input.c_str(), O_RDONLY | O_CLOEXEC);
        if (f < 0) return Fail("load", Error::FromErrno(errno, "open " + o->input));
        in = UniqueFd(f);
        fd = f;
      } else if (isatty(STDIN_FILENO)) {
        return Fail("load", Error(Errc::kInvalidArgument,
                                  "requested load from stdin, but stdin is a terminal; use -i "
                                  "FILE or a redirect"));
      }
      auto store = OpenStore(ctx);
      if (!store) return Fail(what, std::move(store).error());
      if (fd == STDIN_FILENO)
        if (auto r = SpoolStdinIfStream(**store); !r) return Fail(what, std::move(r).error());
      auto lock = (*store)->Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail(what, std::move(lock).error());
      auto res = (*store)->Load(fd, name);
      if (!res) return Fail(what, std::move(res).error());
      for (const auto& t : res->tags) std::cout << "Loaded image: " << t << "\n";
      for (const auto& id : res->untagged) std::cout << "Loaded image ID: " << id.str() << "\n";
      return 0;
    };
  });
}

void AddSave(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string output, format = "docker-archive";
    std::vector<std::string> images;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("save", "Save images to a tar archive (stdout by default)");
  sub->add_option("-o,--output", o->output, "Write to a file instead of stdout");
  sub->add_option("--format", o->format, "docker-archive or oci-archive")
      ->check(CLI::IsMember({"docker-archive", "oci-archive"}));
  sub->add_option("images", o->images, "IMAGE...")->required();
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      std::string what = "save " + Join(o->images, " ");
      auto fmt = o->format == "oci-archive" ? image::ArchiveFormat::kOciArchive
                                            : image::ArchiveFormat::kDockerArchive;
      if (o->output.empty() && isatty(STDOUT_FILENO))
        return Fail("save", Error(Errc::kInvalidArgument,
                                  "cowardly refusing to save to a terminal. Use the -o flag "
                                  "or redirect"));
      auto store = OpenStore(ctx);
      if (!store) return Fail(what, std::move(store).error());
      auto lock = (*store)->Lock(FileLock::Mode::kShared);
      if (!lock) return Fail(what, std::move(lock).error());
      if (o->output.empty()) {
        auto r = (*store)->Save(o->images, fmt, STDOUT_FILENO);
        if (!r) return Fail(what, std::move(r).error());
        return 0;
      }
      // Written beside the target and renamed: a failed save leaves no half archive.
      std::string tmp = o->output + ".shale-XXXXXX";
      int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
      if (fd < 0) return Fail(what, Error::FromErrno(errno, "create " + tmp));
      UniqueFd out(fd);
      ::fchmod(fd, 0644);
      auto r = (*store)->Save(o->images, fmt, fd);
      if (r && ::fsync(fd) != 0) r = Error::FromErrno(errno, "fsync " + o->output);
      out.reset();
      if (r) r = RenameAbs(tmp, o->output);
      if (!r) {
        ::unlink(tmp.c_str());
        return Fail(what, std::move(r).error());
      }
      return 0;
    };
  });
}

void AddImages(CLI::App& app, Context& ctx) {
  struct Opts {
    bool quiet = false, no_trunc = false, all = false, digests = false;
    std::string format, filter;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("images", "List images");
  sub->add_flag("-q,--quiet", o->quiet, "Only show image IDs");
  sub->add_flag("--digests", o->digests, "Show digests (of the manifest pulled or pushed)");
  sub->add_flag("-a,--all", o->all, "Show all images (default hides intermediate images)");
  sub->add_flag("--no-trunc", o->no_trunc, "Don't truncate output");
  sub->add_option("--format", o->format, "json: one JSON object per line")
      ->check(CLI::IsMember({"json", "table"}));
  sub->add_option("reference", o->filter, "REPOSITORY[:TAG] to list");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      auto store = OpenStore(ctx);
      if (!store) return Fail("images", std::move(store).error());
      auto lock = (*store)->Lock(FileLock::Mode::kShared);
      if (!lock) return Fail("images", std::move(lock).error());
      auto list = (*store)->List();
      if (!list) return Fail("images", std::move(list).error());
      int64_t now = NowUnixNanos() / 1000000000;
      std::vector<std::vector<std::string>> rows;
      if (o->digests)
        rows.push_back({"REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"});
      else
        rows.push_back({"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"});
      std::vector<std::string> seen_ids;
      // docker: an untagged image another image was built or committed on is an
      // intermediate image (a build step), shown only with -a.
      std::set<std::string> parents;
      for (const auto& img : *list)
        if (img.parent) parents.insert(img.parent->str());
      for (const auto& img : *list) {
        if (!o->all && img.repo_tags.empty() && parents.count(img.id.str())) continue;
        std::vector<std::pair<std::string, std::string>> names;
        for (const auto& t : img.repo_tags) {
          size_t c = t.rfind(':');
          names.emplace_back(t.substr(0, c), t.substr(c + 1));
        }
        if (names.empty()) names.emplace_back("<none>", "<none>");
        std::string id = o->no_trunc ? img.id.str() : ShortId(img.id);
        for (const auto& [repo, tag] : names) {
          if (!o->filter.empty() && o->filter != repo && o->filter != repo + ":" + tag) continue;
          // The repository's own digest, as docker shows it: "repo@sha256:…" for this repo.
          std::string digest = "<none>";
          for (const auto& rd : img.repo_digests)
            if (size_t at = rd.find('@'); at != std::string::npos && rd.substr(0, at) == repo)
              digest = rd.substr(at + 1);
          if (o->quiet) {
            if (std::find(seen_ids.begin(), seen_ids.end(), id) == seen_ids.end()) {
              std::cout << id << "\n";
              seen_ids.push_back(id);
            }
            continue;
          }
          if (o->format == "json") {
            nlohmann::json j = {
                {"Containers", "N/A"},
                {"CreatedAt", DockerTime(img.created_unix)},
                {"CreatedSince", HumanAgo(img.created_unix, now)},
                {"Digest", digest},
                {"ID", id},
                {"Repository", repo},
                {"SharedSize", "N/A"},
                {"Size", HumanSize(img.size)},
                {"Tag", tag},
                {"UniqueSize", "N/A"},
                {"VirtualSize", HumanSize(img.size)}};
            std::cout << j.dump() << "\n";
            continue;
          }
          if (o->digests)
            rows.push_back({repo, tag, digest, id, HumanAgo(img.created_unix, now),
                            HumanSize(img.size)});
          else
            rows.push_back({repo, tag, id, HumanAgo(img.created_unix, now), HumanSize(img.size)});
        }
      }
      if (!o->quiet && o->format != "json") PrintTable(rows);
      return 0;
    };
  });
}

void AddTag(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string source, target;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("tag", "Create a tag TARGET that refers to SOURCE");
  sub->add_option("source", o->source, "SOURCE_IMAGE[:TAG]")->required();
  sub->add_option("target", o->target, "TARGET_IMAGE[:TAG]")->required();
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      std::string what = "tag " + o->source;
      auto store = OpenStore(ctx);
      if (!store) return Fail(what, std::move(store).error());
      auto lock = (*store)->Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail(what, std::move(lock).error());
      auto img = (*store)->Resolve(o->source);
      if (!img) return Fail(what, std::move(img).error());
      auto r = (*store)->Tag(*img, o->target);
      if (!r) return Fail(what, std::move(r).error());
      return 0;
    };
  });
}

void AddRmi(CLI::App& app, Context& ctx) {
  struct Opts {
    bool force = false;
    std::vector<std::string> images;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("rmi", "Remove images");
  sub->add_flag("-f,--force", o->force, "Force removal of the image");
  sub->add_option("images", o->images, "IMAGE...")->required();
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      auto store = OpenStore(ctx);
      if (!store) return Fail("rmi", std::move(store).error());
      auto lock = (*store)->Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail("rmi", std::move(lock).error());
      int rc = 0;
      for (const auto& ref : o->images) {
        auto lines = (*store)->Remove(ref, o->force);
        if (!lines) {
          rc = Fail("rmi " + ref, std::move(lines).error());
          continue;
        }
        for (const auto& l : *lines) std::cout << l << "\n";
      }
      return rc;
    };
  });
}

void AddHistory(CLI::App& app, Context& ctx) {
  struct Opts {
    bool no_trunc = false, quiet = false;
    std::string image;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("history", "Show the history of an image");
  sub->add_flag("--no-trunc", o->no_trunc, "Don't truncate output");
  sub->add_flag("-q,--quiet", o->quiet, "Only show image IDs");
  sub->add_option("image", o->image, "IMAGE")->required();
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      std::string what = "history " + o->image;
      auto store = OpenStore(ctx);
      if (!store) return Fail(what, std::move(store).error());
      auto lock = (*store)->Lock(FileLock::Mode::kShared);
      if (!lock) return Fail(what, std::move(lock).error());
      auto img = (*store)->Resolve(o->image);
      if (!img) return Fail(what, std::move(img).error());
      auto hist = (*store)->History(*img);
      if (!hist) return Fail(what, std::move(hist).error());
      int64_t now = NowUnixNanos() / 1000000000;
      std::vector<std::vector<std::string>> rows = {
          {"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"}};
      for (const auto& h : *hist) {
        std::string id = h.id;
        if (id != "<missing>" && !o->no_trunc) id = id.substr(7, 12);
        if (o->quiet) {
          std::cout << id << "\n";
          continue;
        }
        std::string by = h.created_by;
        for (auto& ch : by)
          if (ch == '\n' || ch == '\t') ch = ' ';
        rows.push_back({id, h.created_unix ? HumanAgo(h.created_unix, now) : "N/A",
                        o->no_trunc ? by : Ellipsis(by, 45), HumanSize(h.size), h.comment});
      }
      if (!o->quiet) PrintTable(rows);
      return 0;
    };
  });
}

void AddMount(CLI::App& app, Context& ctx, bool mount) {
  auto image = std::make_shared<std::string>();
  auto* sub = app.add_subcommand(mount ? "mount" : "umount",
                                 mount ? "Mount an image read-only and print the merged dir"
                                       : "Unmount an image mounted by `shale mount`");
  sub->add_option("image", *image, "IMAGE")->required();
  sub->callback([&ctx, image, mount] {
    ctx.action = [&ctx, image, mount]() -> int {
      std::string what = std::string(mount ? "mount " : "umount ") + *image;
      auto store = OpenStore(ctx);
      if (!store) return Fail(what, std::move(store).error());
      auto lock = (*store)->Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail(what, std::move(lock).error());
      auto img = (*store)->Resolve(*image);
      if (!img) return Fail(what, std::move(img).error());
      if (!mount) {
        auto r = (*store)->UnmountImage(*img);
        if (!r) return Fail(what, std::move(r).error());
        return 0;
      }
      auto dir = (*store)->MountImage(*img);
      if (!dir) return Fail(what, std::move(dir).error());
      std::cout << *dir << "\n";
      return 0;
    };
  });
}

}  // namespace

void RegisterImageCommands(CLI::App& app, Context& ctx) {
  if (ctx.Wants("import")) AddImport(app, ctx);
  if (ctx.Wants("load")) AddLoad(app, ctx);
  if (ctx.Wants("save")) AddSave(app, ctx);
  if (ctx.Wants("images")) AddImages(app, ctx);
  if (ctx.Wants("tag")) AddTag(app, ctx);
  if (ctx.Wants("rmi")) AddRmi(app, ctx);
  if (ctx.Wants("history")) AddHistory(app, ctx);
  if (ctx.Wants("mount")) AddMount(app, ctx, true);
  if (ctx.Wants("umount")) AddMount(app, ctx, false);
}

}  // namespace shale::cli
