// Registry verbs: pull, push, login, logout. Each parses, calls image::ImageStore or the
// registry client, prints. Progress as docker prints it: on a terminal one line per layer
// redrawn in place; piped, one plain line per layer step and no carriage returns.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>

#include "cli/context.h"
#include "image/image_store.h"
#include "oci/reference.h"
#include "registry/auth.h"
#include "registry/client.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::cli {
namespace {

int Fail(std::string_view context, Error e) { return ReportError(std::move(e).Wrap(context)); }

// docker's jsonmessage progress bar: "[=====>      ]  12.3MB/45.6MB".
std::string Bar(int64_t done, int64_t total) {
  if (total <= 0) return HumanSize(done);
  int width = 50;
  int filled = static_cast<int>(std::min<int64_t>(width, done * width / total));
  std::string bar = "[" + std::string(static_cast<size_t>(filled > 0 ? filled - 1 : 0), '=') +
                    (filled > 0 ? ">" : "") + std::string(static_cast<size_t>(width - filled), ' ') +
                    "]";
  return bar + "  " + HumanSize(done) + "/" + HumanSize(total);
}

// Renders TransferProgress events to stdout.
class LayerLines {
 public:
  explicit LayerLines(bool quiet) : quiet_(quiet), tty_(isatty(STDOUT_FILENO)) {}
  image::TransferProgress Callback() {
    return [this](const std::string& id, const std::string& status, int64_t done, int64_t total) {
      On(id, status, done, total);
    };
  }
  void Line(const std::string& s) {
    if (!quiet_) std::cout << s << "\n" << std::flush;
  }

 private:
  void On(const std::string& id, const std::string& status, int64_t done, int64_t total) {
    if (quiet_) return;
    bool transfer = status == "Downloading" || status == "Pushing";
    if (!tty_) {
      // One line per step; byte counts only when a transfer starts.
      if (transfer && last_[id] == status) return;
      last_[id] = status;
      std::cout << id << ": " << status << "\n" << std::flush;
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (transfer && last_[id] == status && now - last_draw_ < std::chrono::milliseconds(100) &&
        done < total)
      return;
    last_[id] = status;
    last_draw_ = now;
    std::string text = id + ": " + status + (transfer ? " " + Bar(done, total) : "");
    auto it = index_.find(id);
    if (it == index_.end()) {
      index_[id] = lines_.size();
      lines_.push_back(text);
      std::cout << text << "\n";
    } else {
      lines_[it->second] = text;
      size_t up = lines_.size() - it->second;
      std::cout << "\033[" << up << "A\r\033[K" << text << "\033[" << up << "B\r";
    }
    std::cout << std::flush;
  }

  bool quiet_, tty_;
  std::map<std::string, size_t> index_;
  std::vector<std::string> lines_;
  std::map<std::string, std::string> last_;
  std::chrono::steady_clock::time_point last_draw_{};
};

struct Common {
  bool tls_verify = true;
  bool quiet = false;
};

void AddTlsFlag(CLI::App* sub, Common& c) {
  sub->add_flag("--tls-verify{true}", c.tls_verify,
                "Require HTTPS and verify certificates (--tls-verify=false to skip; loopback "
                "registries may always use plain HTTP)")
      ->default_str("true");
}

registry::ClientOptions ClientOpts(const Common& c) {
  registry::ClientOptions o;
  o.tls_verify = c.tls_verify;
  return o;
}

void AddPull(CLI::App& app, Context& ctx) {
  struct Opts : Common {
    std::string ref, platform;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("pull", "Download an image from a registry");
  sub->add_option("reference", o->ref, "NAME[:TAG|@DIGEST]")->required();
  sub->add_option("--platform", o->platform, "OS/ARCH[/VARIANT] of a multi-platform image");
  sub->add_flag("-q,--quiet", o->quiet, "Print only the image reference");
  AddTlsFlag(sub, *o);
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      std::string what = "pull " + o->ref;
      auto ref = oci::ParseReference(o->ref);
      if (!ref) return Fail(what, std::move(ref).error());
      setenv("SHALE_NO_PROGRESS", "1", 1);  // the layer lines below replace load's bar
      LayerLines lines(o->quiet);
      lines.Line((ref->digest.empty() ? ref->tag : ref->digest) + ": Pulling from " +
                 (ref->domain == "docker.io" ? ref->path : ref->FullName().substr(0)));
      auto store = image::ImageStore::Open(ctx.root);
      if (!store) return Fail(what, std::move(store).error());
      auto lock = (*store)->Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail(what, std::move(lock).error());
      image::PullOptions po;
      po.platform = o->platform;
      po.client = ClientOpts(*o);
      po.progress = lines.Callback();
      // podman's max_parallel_downloads, as an environment knob (docker's is a daemon flag).
      if (const char* n = getenv("SHALE_MAX_DOWNLOADS"); n && *n) {
        auto v = ParseUint(n, 64, "SHALE_MAX_DOWNLOADS");
        if (!v || *v == 0)
          return Fail(what, Error(Errc::kInvalidArgument,
                                  "SHALE_MAX_DOWNLOADS=" + std::string(n) + ": give 1 to 64"));
        po.max_downloads = static_cast<int>(*v);
      }
      auto res = (*store)->Pull(o->ref, po);
      if (!res) return Fail(what, std::move(res).error());
      lines.Line("Digest: " + res->repo_digest.substr(res->repo_digest.find('@') + 1));
      std::string name = res->tag.empty() ? ref->FamiliarString() : res->tag;
      lines.Line(res->up_to_date ? "Status: Image is up to date for " + name
                                 : "Status: Downloaded newer image for " + name);
      std::cout << ref->FullString() << "\n";
      return 0;
    };
  });
}

void AddPush(CLI::App& app, Context& ctx) {
  struct Opts : Common {
    std::string ref;
    std::string compression;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("push", "Upload an image to a registry");
  sub->add_option("reference", o->ref, "NAME[:TAG] (the name says which registry)")->required();
  sub->add_flag("-q,--quiet", o->quiet, "Print only the pushed reference");
  sub->add_option("--compression-format", o->compression,
                  "Send every layer compressed with gzip or zstd (made once and kept); "
                  "default: the blob kept from pull or load, else gzip")
      ->check(CLI::IsMember({"gzip", "zstd"}));
  AddTlsFlag(sub, *o);
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      std::string what = "push " + o->ref;
      auto ref = oci::ParseReference(o->ref);
      if (!ref) return Fail(what, std::move(ref).error());
      setenv("SHALE_NO_PROGRESS", "1", 1);
      LayerLines lines(o->quiet);
      lines.Line("The push refers to repository [" +
                 (ref->domain == "docker.io" ? "docker.io/" + ref->path : ref->FullName()) + "]");
      auto store = image::ImageStore::Open(ctx.root);
      if (!store) return Fail(what, std::move(store).error());
      auto lock = (*store)->Lock(FileLock::Mode::kExclusive);
      if (!lock) return Fail(what, std::move(lock).error());
      image::PushOptions po;
      po.client = ClientOpts(*o);
      po.progress = lines.Callback();
      if (o->compression == "gzip") po.compression = layer::Compression::kGzip;
      if (o->compression == "zstd") po.compression = layer::Compression::kZstd;
      auto res = (*store)->Push(o->ref, po);
      if (!res) return Fail(what, std::move(res).error());
      if (o->quiet) {
        std::cout << ref->FullString() << "\n";
      } else {
        std::cout << ref->tag << ": digest: " << res->manifest_digest.str()
                  << " size: " << res->manifest_size << "\n";
      }
      return 0;
    };
  });
}

// "https://127.0.0.1:5000/" -> "127.0.0.1:5000"; docker.io's aliases -> "docker.io".
std::string RegistryHost(std::string s) {
  for (const char* p : {"https://", "http://"})
    if (StartsWith(s, p)) s = s.substr(strlen(p));
  if (size_t slash = s.find('/'); slash != std::string::npos) s = s.substr(0, slash);
  if (s == "index.docker.io" || s == "registry-1.docker.io") s = "docker.io";
  return s;
}

void AddLogin(CLI::App& app, Context& ctx) {
  struct Opts : Common {
    std::string server, user, password;
    bool password_stdin = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("login", "Log in to a registry (credentials checked, then saved)");
  sub->add_option("server", o->server, "HOST[:PORT] (default docker.io)");
  sub->add_option("-u,--username", o->user, "Username");
  auto* pw = sub->add_option("-p,--password", o->password, "Password (visible in ps; prefer --password-stdin)");
  sub->add_flag("--password-stdin", o->password_stdin, "Read the password from stdin")->excludes(pw);
  AddTlsFlag(sub, *o);
  sub->callback([&ctx, o] {
    ctx.action = [o]() -> int {
      std::string host = RegistryHost(o->server.empty() ? "docker.io" : o->server);
      std::string what = "login " + host;
      if (o->password_stdin) {
        auto all = ReadAll(STDIN_FILENO, "stdin");
        if (!all) return Fail(what, std::move(all).error());
        o->password = *all;
        while (!o->password.empty() &&
               (o->password.back() == '\n' || o->password.back() == '\r'))
          o->password.pop_back();
      }
      if (o->user.empty())
        return Fail(what, Error(Errc::kInvalidArgument, "give a username with -u"));
      if (o->password.empty())
        return Fail(what, Error(Errc::kInvalidArgument,
                                "give a password with --password-stdin or -p"));
      registry::ClientOptions co = ClientOpts(*o);
      co.credentials = registry::Credentials{o->user, o->password};
      auto c = registry::Client::Connect(host, co);
      if (!c) return Fail(what, std::move(c).error());
      if (auto r = (*c)->CheckLogin(); !r) return Fail(what, std::move(r).error());
      registry::AuthFiles files = registry::AuthFiles::Default();
      if (auto r = registry::StoreCredentials(files, host, *co.credentials); !r)
        return Fail(what, std::move(r).error());
      std::cout << "Login Succeeded\n";
      return 0;
    };
  });
}

void AddLogout(CLI::App& app, Context& ctx) {
  auto server = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("logout", "Forget the credentials saved for a registry");
  sub->add_option("server", *server, "HOST[:PORT] (default docker.io)");
  sub->callback([&ctx, server] {
    ctx.action = [server]() -> int {
      std::string host = RegistryHost(server->empty() ? "docker.io" : *server);
      auto r = registry::RemoveCredentials(registry::AuthFiles::Default(), host);
      if (!r && r.error().code() == Errc::kNotFound) {
        std::cout << "Not logged in to " << host << "\n";  // docker: not an error
        return 0;
      }
      if (!r) return Fail("logout " + host, std::move(r).error());
      std::cout << "Removing login credentials for " << host << "\n";
      return 0;
    };
  });
}

}  // namespace

int PullForRun(image::ImageStore& store, const std::string& image, const std::string& policy) {
  if (policy == "never") return 0;
  if (policy != "missing" && policy != "always")
    return ReportError(Error(Errc::kInvalidArgument, "--pull " + policy +
                                                         ": expected missing, always or never"),
                       125);
  auto ref = oci::ParseReference(image);
  if (!ref) return 0;  // an image id or a bad name: the create that follows says which
  std::string what = "pull " + image;
  // The check takes no lock (tags and configs are replaced by rename), so that `run` of a
  // local image pays only for the lookup.
  if (policy == "missing") {
    if (store.Resolve(image)) return 0;
    std::cerr << "Unable to find image '" << ref->FamiliarString() << "' locally\n";
  }
  auto lock = store.Lock(FileLock::Mode::kExclusive);
  if (!lock) return ReportError(std::move(lock).error().Wrap(what), 125);
  setenv("SHALE_NO_PROGRESS", "1", 1);
  image::PullOptions po;
  // docker prints the pull of `run` on stderr, one line per layer step.
  po.progress = [](const std::string& id, const std::string& status, int64_t, int64_t) {
    if (status != "Downloading") std::cerr << id << ": " << status << "\n";
  };
  auto res = store.Pull(image, po);
  if (!res) {
    ReportError(std::move(res).error().Wrap(what));
    return 125;
  }
  std::cerr << "Digest: " << res->repo_digest.substr(res->repo_digest.find('@') + 1) << "\n";
  return 0;
}

void RegisterRegistryCommands(CLI::App& app, Context& ctx) {
  if (ctx.Wants("pull")) AddPull(app, ctx);
  if (ctx.Wants("push")) AddPush(app, ctx);
  if (ctx.Wants("login")) AddLogin(app, ctx);
  if (ctx.Wants("logout")) AddLogout(app, ctx);
}

}  // namespace shale::cli
