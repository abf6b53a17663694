// docker import: one layer from a tarball, a directory or stdin; and --change parsing.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/store_impl.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::image {
namespace {

// ["a","b"] (JSON form) or a shell form wrapped as ["/bin/sh","-c",s].
nlohmann::json CommandForm(std::string_view arg) {
  std::string_view t = Trim(arg);
  if (!t.empty() && t.front() == '[') {
    auto j = nlohmann::json::parse(t, nullptr, false);
    if (!j.is_discarded() && j.is_array()) {
      bool strings = true;
      for (const auto& e : j) strings &= e.is_string();
      if (strings) return j;
    }
  }
  return nlohmann::json::array({"/bin/sh", "-c", std::string(t)});
}

// "A=b C=d" or "A b" (legacy one-pair form).
std::vector<std::pair<std::string, std::string>> KeyValues(std::string_view arg) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string_view t = Trim(arg);
  size_t sp = t.find_first_of(" \t");
  size_t eq = t.find('=');
  if (eq == std::string_view::npos || (sp != std::string_view::npos && sp < eq)) {
    if (sp == std::string_view::npos) return out;
    out.emplace_back(std::string(t.substr(0, sp)), std::string(Trim(t.substr(sp + 1))));
    return out;
  }
  // Words separated by spaces; values may be double-quoted.
  size_t i = 0;
  while (i < t.size()) {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i;
    if (i >= t.size()) break;
    std::string word;
    bool quoted = false;
    while (i < t.size() && (quoted || (t[i] != ' ' && t[i] != '\t'))) {
      if (t[i] == '"') {
        quoted = !quoted;
      } else if (t[i] == '\\' && i + 1 < t.size()) {
        word += t[++i];
      } else {
        word += t[i];
      }
      ++i;
    }
    size_t e = word.find('=');
    if (e == std::string::npos) out.emplace_back(word, "");
    else out.emplace_back(word.substr(0, e), word.substr(e + 1));
  }
  return out;
}

}  // namespace

Result<void> ApplyChanges(nlohmann::json& config, const std::vector<std::string>& changes) {
  if (!config.is_object()) config = nlohmann::json::object();
  for (const auto& change : changes) {
    std::string_view c = Trim(change);
    size_t sp = c.find_first_of(" \t");
    std::string instr(c.substr(0, sp));
    for (auto& ch : instr) ch = static_cast<char>(toupper(ch));
    std::string_view arg = sp == std::string_view::npos ? "" : Trim(c.substr(sp + 1));
    auto bad = [&](std::string_view why) {
      return Error(Errc::kInvalidArgument, "change \"" + change + "\": " + std::string(why));
    };
    if (instr == "CMD") {
      config["Cmd"] = CommandForm(arg);
    } else if (instr == "ENTRYPOINT") {
      config["Entrypoint"] = CommandForm(arg);
    } else if (instr == "ENV") {
      auto kvs = KeyValues(arg);
      if (kvs.empty()) return bad("ENV needs NAME=VALUE");
      nlohmann::json env = config.contains("Env") && config["Env"].is_array()
                               ? config["Env"] : nlohmann::json::array();
      for (const auto& [k, v] : kvs) {
        std::string entry = k + "=" + v;
        bool replaced = false;
        for (auto& e : env)
          if (e.is_string() && StartsWith(e.get<std::string>(), k + "=")) {
            e = entry;
            replaced = true;
          }
        if (!replaced) env.push_back(entry);
      }
      config["Env"] = env;
    } else if (instr == "WORKDIR") {
      config["WorkingDir"] = std::string(arg);
    } else if (instr == "USER") {
      config["User"] = std::string(arg);
    } else if (instr == "STOPSIGNAL") {
      config["StopSignal"] = std::string(arg);
    } else if (instr == "EXPOSE") {
      for (const auto& p : Split(arg, ' ')) {
        if (p.empty()) continue;
        std::string port = p.find('/') == std::string::npos ? p + "/tcp" : p;
        config["ExposedPorts"][port] = nlohmann::json::object();
      }
    } else if (instr == "VOLUME") {
      nlohmann::json v = CommandForm(arg);
      if (v.size() == 3 && v[0] == "/bin/sh") v = nlohmann::json::array({std::string(arg)});
      for (const auto& p : v) config["Volumes"][p.get<std::string>()] = nlohmann::json::object();
    } else if (instr == "LABEL") {
      auto kvs = KeyValues(arg);
      if (kvs.empty()) return bad("LABEL needs KEY=VALUE");
      for (const auto& [k, v] : kvs) config["Labels"][k] = v;
    } else if (instr == "ONBUILD") {
      config["OnBuild"].push_back(std::string(arg));
    } else {
      return bad("unknown instruction " + instr +
                 " (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, "
                 "VOLUME or WORKDIR)");
    }
  }
  return Ok();
}

Result<Image> StoreImpl::Import(const std::string& source, const ImportOptions& opts) {
  std::vector<std::string> tags;
  if (!opts.tag.empty()) tags.push_back(TRY(NormalizeTag(opts.tag)));
  nlohmann::json cfg = nlohmann::json::object();
  TRY(ApplyChanges(cfg, opts.changes));

  Txn txn = TRY(Txn::Begin(*this));
  Unpacked u;
  if (source == "-") {
    u = TRY(UnpackFd(txn, "", STDIN_FILENO, true, "Importing", -1));
  } else if (IsDirectory(source)) {
    // A directory becomes a deterministic tar first (that tar is the kept blob, so its
    // sha256 is the diffID), then is applied like any layer.
    Dir src = TRY(Dir::Open(source));
    std::string tar_path = txn.dir() + "/import.tar";
    int fd = ::open(tar_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Error::FromErrno(errno, "open " + tar_path);
    UniqueFd tar(fd);
    layer::WriteResult wr = TRY(layer::WriteTree(src, tar.get()).Wrap("import " + source));
    if (::lseek(tar.get(), 0, SEEK_SET) < 0) return Error::FromErrno(errno, "lseek " + tar_path);
    u = TRY(UnpackFd(txn, "", tar.get(), false, "Importing", wr.size));
    u.blob_tmp = tar_path;
    if (u.res.diff_id != wr.diff_id)
      return Error(Errc::kInternal, "import " + source + ": tar of the directory has digest " +
                                        wr.diff_id.str() + " but extracted as " +
                                        u.res.diff_id.str());
  } else {
    int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error::FromErrno(errno, "open " + source);
    UniqueFd in(fd);
    struct stat st;
    int64_t total = ::fstat(fd, &st) == 0 ? st.st_size : -1;
    u = TRY(UnpackFd(txn, "", in.get(), true, "Importing", total));
  }
  Digest chain = u.res.diff_id;
  if (layers_.Has(chain)) {
    // Same content already present: drop the new driver layer (the txn does), reuse.
  } else {
    TRY(Register(txn, u, chain, Digest(), ""));
  }
  std::string now = FormatRfc3339Nano(NowUnixNanos());
  std::string comment = opts.message.empty() ? "Imported from " + source : opts.message;
  nlohmann::json config = {
      {"architecture", "amd64"},
      {"os", "linux"},
      {"created", now},
      {"comment", comment},
      {"config", cfg},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {u.res.diff_id.str()}}}},
      {"history", nlohmann::json::array({{{"created", now}, {"comment", comment}}})}};
  Digest id = TRY(RegisterImage(txn, config.dump(), tags));
  if (layers_.Has(chain) && TRY(layers_.Get(chain)).cache_id != u.cache_id) {
    // Reused layer: the freshly made driver layer is rolled back below, nothing else is.
    txn.Commit();
    (void)driver_->Remove(u.cache_id);
  } else {
    txn.Commit();
  }
  return Get(id);
}

}  // namespace shale::image
