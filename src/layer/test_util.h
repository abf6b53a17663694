// Helpers for the layer tests: tars built with libarchive's writer, files read back.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <string>
#include <vector>

#include "layer/layer.h"
#include "util/fd.h"
#include "util/fs.h"

namespace shale::layer::testing {

struct TarEntry {
  std::string name;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;      // regular file content
  std::string link;      // symlink target
  std::string hardlink;  // hardlink target
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime = 1000000000;
  unsigned dev_major = 0, dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

inline TarEntry File(std::string name, std::string data = "x") {
  TarEntry e;
  e.name = std::move(name);
  e.data = std::move(data);
  return e;
}
inline TarEntry DirEntry(std::string name, mode_t perm = 0755) {
  TarEntry e;
  e.name = std::move(name);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}
inline TarEntry Symlink(std::string name, std::string target) {
  TarEntry e;
  e.name = std::move(name);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.link = std::move(target);
  return e;
}
inline TarEntry Hardlink(std::string name, std::string target) {
  TarEntry e;
  e.name = std::move(name);
  e.hardlink = std::move(target);
  return e;
}

inline std::string MakeTar(const std::vector<TarEntry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.name.c_str());
    archive_entry_set_filetype(e, t.type);
    archive_entry_set_perm(e, t.perm);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    if (!t.link.empty()) archive_entry_set_symlink(e, t.link.c_str());
    if (!t.hardlink.empty()) archive_entry_set_hardlink(e, t.hardlink.c_str());
    if (t.type == AE_IFCHR || t.type == AE_IFBLK) {
      archive_entry_set_rdevmajor(e, t.dev_major);
      archive_entry_set_rdevminor(e, t.dev_minor);
    }
    for (auto& [k, v] : t.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    bool has_data = t.type == AE_IFREG && t.hardlink.empty();
    archive_entry_set_size(e, has_data ? static_cast<la_int64_t>(t.data.size()) : 0);
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (has_data && !t.data.empty()) archive_write_data(a, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// A memfd holding data, positioned at 0.
inline UniqueFd MemFd(const std::string& data) {
  int fd = memfd_create("layer-test", MFD_CLOEXEC);
  size_t off = 0;
  while (off < data.size()) off += static_cast<size_t>(write(fd, data.data() + off, data.size() - off));
  lseek(fd, 0, SEEK_SET);
  return UniqueFd(fd);
}

inline std::string ReadFd(int fd) {
  lseek(fd, 0, SEEK_SET);
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

inline std::string Gzip(const std::string& data) {
  UniqueFd in = MemFd(data);
  UniqueFd out(memfd_create("gz", MFD_CLOEXEC));
  auto r = GzipCompress(in.get(), out.get());
  EXPECT_TRUE(r) << r.error().message();
  return ReadFd(out.get());
}

inline std::string Zstd(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  out.resize(n);
  return out;
}

inline Result<ApplyResult> ApplyString(const Dir& root, const std::string& blob,
                                       Whiteouts mode = Whiteouts::kOverlay,
                                       size_t chunk = 1 << 20) {
  size_t pos = 0;
  ReadFn read = [&](char* buf, size_t n) -> Result<size_t> {
    size_t k = std::min({n, chunk, blob.size() - pos});
    memcpy(buf, blob.data() + pos, k);
    pos += k;
    return k;
  };
  ApplyOptions opts;
  opts.whiteouts = mode;
  opts.sync = false;
  return Apply(root, read, opts);
}

inline bool Lexists(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0;
}

inline std::string Slurp(const std::string& p) {
  auto r = ReadFile(p);
  return r ? *r : std::string("<missing>");
}

// A test dir with root/ (where layers go) and outside/ (must stay empty).
struct Sandbox {
  ScopedTempDir tmp;
  std::string root_path, outside;
  Dir root;
  Sandbox() {
    tmp = std::move(ScopedTempDir::Make("/tmp", "layer-test-").value());
    root_path = tmp.path() + "/root";
    outside = tmp.path() + "/outside";
    mkdir(outside.c_str(), 0755);
    root = std::move(Dir::Create(root_path).value());
  }
  std::vector<std::string> OutsideNames() const { return ListDir(outside).value(); }
};

}  // namespace shale::layer::testing
