#include "container/spec.h"

#include <sys/resource.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "container/container.h"
#include "container/files.h"
#include "util/fs.h"

namespace shale::container {
namespace {

using nlohmann::json;

const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

json ImageConfig() {
  return json::parse(R"({"Env":["PATH=/bin","FOO=image"],"Cmd":["sh"],"WorkingDir":"/srv",
                         "User":"","StopSignal":"SIGQUIT"})");
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(MergeConfig, ImageDefaultsAndFlags) {
  CreateOptions o;
  o.image = "busybox";
  o.env = {"FOO=flag", "BAR=1"};
  auto m = MergeConfig(ImageConfig(), o, kId, "host", {"FROMFILE=x"});
  ASSERT_TRUE(m) << m.error().message();
  const ContainerConfig& c = m->first;
  EXPECT_EQ(c.hostname, "0123456789ab");
  EXPECT_EQ(c.cmd, std::vector<std::string>{"sh"});
  EXPECT_EQ(c.working_dir, "/srv");
  EXPECT_EQ(c.stop_signal, "SIGQUIT");
  EXPECT_EQ(c.env, (std::vector<std::string>{"PATH=/bin", "FOO=flag", "FROMFILE=x", "BAR=1"}));
  EXPECT_EQ(m->second.network_mode, "bridge");  // docker's default
}

TEST(MergeConfig, EntrypointResetsImageCmdAndNoCommandFails) {
  CreateOptions o;
  o.entrypoint = "/bin/echo";
  auto m = MergeConfig(ImageConfig(), o, kId, "host", {});
  ASSERT_TRUE(m);
  EXPECT_EQ(ProcessArgs(m->first), std::vector<std::string>{"/bin/echo"});
  o.entrypoint = "";
  auto none = MergeConfig(ImageConfig(), o, kId, "host", {});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("no command"), std::string::npos);
}

TEST(MergeConfig, DefaultPathAndHostNetwork) {
  CreateOptions o;
  o.cmd = {"true"};
  o.network = "host";
  auto m = MergeConfig(json::object(), o, kId, "myhost", {});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first.env[0], kDefaultPath);
  EXPECT_EQ(m->first.hostname, "myhost");
  for (const char* ok : {"bridge", "none", "container:web", "my-net"}) {
    o.network = ok;
    auto m2 = MergeConfig(json::object(), o, kId, "h", {});
    ASSERT_TRUE(m2) << ok;
    EXPECT_EQ(m2->second.network_mode, ok);
    EXPECT_EQ(m2->first.hostname, "0123456789ab");
  }
  for (const char* bad : {"", "container:", "bad name", "container:x y"}) {
    o.network = bad;
    auto m3 = MergeConfig(json::object(), o, kId, "h", {});
    ASSERT_FALSE(m3) << bad;
    EXPECT_NE(m3.error().message().find("--network"), std::string::npos);
  }
}

TEST(MergeConfig, PublishedPortsAliasesAndTheirModes) {
  CreateOptions o;
  o.cmd = {"true"};
  o.publish = {"127.0.0.1:8080:80", "53/udp"};
  o.publish_all = true;
  json image = {{"ExposedPorts", {{"80/tcp", json::object()}, {"443/tcp", json::object()}}}};
  auto m = MergeConfig(image, o, kId, "h", {});
  ASSERT_TRUE(m) << m.error().message();
  // -P adds only the exposed ports -p did not already publish.
  ASSERT_EQ(m->second.port_bindings.size(), 3u);
  EXPECT_EQ(m->second.port_bindings[0], (network::PortMapping{"127.0.0.1", 8080, 80, "tcp"}));
  EXPECT_EQ(m->second.port_bindings[2], (network::PortMapping{"", 0, 443, "tcp"}));
  // The record keeps docker's PortBindings and reads them back.
  json hc = ToJson(m->second);
  EXPECT_EQ(hc["PortBindings"]["80/tcp"][0]["HostPort"], "8080");
  EXPECT_EQ(hc["PortBindings"]["443/tcp"][0]["HostPort"], "");
  auto back = HostConfigFromJson(hc);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->port_bindings.size(), 3u);
  o.network = "host";  // docker drops published ports with the host network
  EXPECT_TRUE(MergeConfig(image, o, kId, "h", {})->second.port_bindings.empty());
  o.network = "container:web";
  EXPECT_FALSE(MergeConfig(image, o, kId, "h", {}));
  o.publish = {};
  o.publish_all = false;
  o.network_aliases = {"db"};
  EXPECT_FALSE(MergeConfig(image, o, kId, "h", {}));  // aliases need a user network
  o.network = "app";
  EXPECT_EQ(MergeConfig(image, o, kId, "h", {})->second.network_aliases,
            std::vector<std::string>{"db"});
}

TEST(MergeConfig, Resources) {
  CreateOptions o;
  o.cmd = {"true"};
  o.memory = "32m";
  o.cpus = "1.5";
  o.pids_limit = "20";
  auto m = MergeConfig(json::object(), o, kId, "h", {});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->second.memory, 32 * 1024 * 1024);
  EXPECT_EQ(m->second.nano_cpus, 1500000000);
  SpecPaths p{"/merged", "/c/hostname", "/c/hosts", "/c/resolv.conf", ""};
  auto s = BuildSpec(kId, m->first, m->second, {}, p);
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->linux.resources.memory_limit, 32 * 1024 * 1024);
  EXPECT_EQ(*s->linux.resources.cpu_quota, 150000);
  EXPECT_EQ(*s->linux.resources.cpu_period, 100000u);
  EXPECT_EQ(*s->linux.resources.pids_limit, 20);
  EXPECT_EQ(s->linux.cgroups_path, "shale/" + kId);
}

TEST(Capabilities, AddDropAll) {
  auto d = EffectiveCapabilities({}, {}, false);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size(), 14u);
  auto a = EffectiveCapabilities({"net_admin"}, {"CAP_CHOWN", "kill"}, false);
  ASSERT_TRUE(a);
  EXPECT_TRUE(Has(*a, "CAP_NET_ADMIN"));
  EXPECT_FALSE(Has(*a, "CAP_CHOWN"));
  EXPECT_FALSE(Has(*a, "CAP_KILL"));
  auto none = EffectiveCapabilities({"SYS_ADMIN"}, {"ALL"}, false);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, std::vector<std::string>{"CAP_SYS_ADMIN"});
  auto all = EffectiveCapabilities({"ALL"}, {"NET_RAW"}, false);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), AllCapabilities().size() - 1);
  EXPECT_FALSE(EffectiveCapabilities({"CAP_BOGUS"}, {}, false));
  EXPECT_EQ(EffectiveCapabilities({}, {"ALL"}, true)->size(), AllCapabilities().size());
}

TEST(BuildSpec, DockerDefaults) {
  CreateOptions o;
  o.cmd = {"sh"};
  o.tty = true;
  o.volumes = {"/data:/mnt:ro"};
  o.security_opt = {"no-new-privileges"};
  o.init = true;
  auto m = MergeConfig(json::object(), o, kId, "h", {});
  ASSERT_TRUE(m);
  SpecPaths p{"/merged", "/c/hostname", "/c/hosts", "/c/resolv.conf", "/usr/bin/shale-init"};
  auto s = BuildSpec(kId, m->first, m->second, {1000, 1000, {}}, p);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->root.path, "/merged");
  EXPECT_EQ(s->hostname, "0123456789ab");
  EXPECT_TRUE(s->process.terminal);
  EXPECT_EQ(s->process.args, (std::vector<std::string>{"/dev/init", "--", "sh"}));
  EXPECT_TRUE(Has(s->process.env, "TERM=xterm"));
  EXPECT_TRUE(Has(s->process.env, "HOSTNAME=0123456789ab"));
  EXPECT_TRUE(s->process.no_new_privileges);
  EXPECT_EQ(s->process.user.uid, 1000u);
  std::vector<std::string> dests;
  for (const auto& mt : s->mounts) dests.push_back(mt.destination);
  for (const char* d : {"/proc", "/dev", "/dev/pts", "/sys", "/dev/mqueue", "/dev/shm",
                        "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/dev/init", "/mnt"})
    EXPECT_TRUE(Has(dests, d)) << d;
  const auto& mnt = s->mounts.back();
  EXPECT_EQ(mnt.source, "/data");
  EXPECT_TRUE(Has(mnt.options, "ro"));
  std::vector<std::string> ns;
  for (const auto& n : s->linux.namespaces) ns.push_back(n.type);
  EXPECT_TRUE(Has(ns, "network"));
  EXPECT_TRUE(Has(ns, "pid"));
  EXPECT_FALSE(s->linux.masked_paths.empty());
  EXPECT_FALSE(s->linux.readonly_paths.empty());
  // Docker's default seccomp profile and device allow-list.
  ASSERT_TRUE(s->linux.seccomp.has_value());
  EXPECT_EQ(s->linux.resources.devices.size(), oci::DefaultDeviceRules().size());
}

TEST(BuildSpec, SeccompUnconfinedKeepsDeviceRules) {
  CreateOptions o;
  o.cmd = {"sh"};
  o.security_opt = {"seccomp=unconfined"};
  auto m = MergeConfig(json::object(), o, kId, "h", {});
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_TRUE(m->second.seccomp_unconfined);
  // Survives the round trip through inspect's HostConfig JSON.
  auto back = HostConfigFromJson(ToJson(m->second));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->seccomp_unconfined);
  auto s = BuildSpec(kId, m->first, m->second, {}, SpecPaths{"/m", "", "", "", ""});
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->linux.seccomp.has_value());
  EXPECT_EQ(s->linux.resources.devices.size(), oci::DefaultDeviceRules().size());
  o.security_opt = {"apparmor=foo"};
  EXPECT_FALSE(MergeConfig(json::object(), o, kId, "h", {}));
}

TEST(BuildSpec, PrivilegedAndHostNetwork) {
  CreateOptions o;
  o.cmd = {"sh"};
  o.privileged = true;
  o.network = "host";
  auto m = MergeConfig(json::object(), o, kId, "h", {});
  ASSERT_TRUE(m);
  auto s = BuildSpec(kId, m->first, m->second, {}, SpecPaths{"/m", "", "", "", ""});
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->linux.masked_paths.empty());
  EXPECT_TRUE(s->linux.readonly_paths.empty());
  EXPECT_EQ(s->process.capabilities.bounding.size(), AllCapabilities().size());
  for (const auto& n : s->linux.namespaces) EXPECT_NE(n.type, "network");
  EXPECT_FALSE(s->linux.seccomp.has_value());
  ASSERT_EQ(s->linux.resources.devices.size(), 1u);
  EXPECT_TRUE(s->linux.resources.devices[0].allow);
  // --init without the binary is a clear error.
  m->second.init = true;
  EXPECT_FALSE(BuildSpec(kId, m->first, m->second, {}, SpecPaths{"/m", "", "", "", ""}));
}

TEST(Parse, VolumesUlimitsCpusEnvFile) {
  EXPECT_FALSE(ParseVolume("vol:/data"));
  EXPECT_FALSE(ParseVolume("/a"));
  EXPECT_FALSE(ParseVolume("/a:/b:zz"));
  auto v = ParseVolume("/a:/b:ro");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->readonly);
  auto u = ParseUlimit("nofile=1024:2048");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->type, "RLIMIT_NOFILE");
  EXPECT_EQ(u->soft, 1024u);
  EXPECT_EQ(u->hard, 2048u);
  EXPECT_FALSE(ParseUlimit("nofile=10:5"));
  EXPECT_FALSE(ParseUlimit("bogus=1"));
  EXPECT_EQ(*ParseCpus("0.5"), 500000000);
  EXPECT_FALSE(ParseCpus("-1"));
  EXPECT_FALSE(ParseCpus("x"));
  setenv("SHALE_TEST_FROM_ENV", "yes", 1);
  auto e = ParseEnvFile("# c\nA=1\n\nSHALE_TEST_FROM_ENV\nSHALE_TEST_UNSET_VAR\n");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, (std::vector<std::string>{"A=1", "SHALE_TEST_FROM_ENV=yes"}));
}

TEST(Ulimits, HardAboveHostLimitIsRefused) {
  struct rlimit cur;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &cur), 0);
  if (cur.rlim_max == RLIM_INFINITY) GTEST_SKIP() << "nofile hard limit is unlimited here";
  oci::Rlimit r{"RLIMIT_NOFILE", cur.rlim_max + 1, 1024};
  auto c = CheckUlimits({r});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("ulimit nofile: hard limit " +
                                     std::to_string(cur.rlim_max + 1) +
                                     " exceeds this host's limit " +
                                     std::to_string(cur.rlim_max) +
                                     "; shale cannot raise hard limits"),
            std::string::npos)
      << c.error().message();
  EXPECT_TRUE(CheckUlimits({{"RLIMIT_NOFILE", cur.rlim_max, 1024}}));
}

TEST(ResolveUser, NamesGroupsAndNumbers) {
  std::string passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/a:/bin/sh\n";
  std::string group = "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\nstaff:x:50:alice\n";
  auto a = ResolveUserFrom("alice", passwd, group);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->uid, 1000u);
  EXPECT_EQ(a->gid, 1000u);
  EXPECT_EQ(a->additional_gids, (std::vector<uint32_t>{10, 50}));
  auto b = ResolveUserFrom("alice:wheel", passwd, group);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->gid, 10u);
  auto n = ResolveUserFrom("1234:99", passwd, group);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->uid, 1234u);
  EXPECT_EQ(n->gid, 99u);
  auto missing = ResolveUserFrom("nobody2", passwd, group);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
  EXPECT_FALSE(ResolveUserFrom("alice:nogroup", passwd, group));
}

TEST(ResolveUser, ThroughRootedDirNeverLeaves) {
  auto tmp = ScopedTempDir::Make("/tmp", "shale-spec-");
  ASSERT_TRUE(tmp);
  ASSERT_TRUE(MakeDirsAbs(tmp->path() + "/rootfs/etc"));
  // etc/passwd is a symlink pointing at the host's: it must resolve inside the rootfs.
  ASSERT_EQ(symlink("/../../../../etc/shadow-nope", (tmp->path() + "/rootfs/etc/passwd").c_str()),
            0);
  auto root = Dir::Open(tmp->path() + "/rootfs");
  ASSERT_TRUE(root);
  auto u = ResolveUser(*root, "root");
  ASSERT_FALSE(u);  // no passwd inside: "root" unknown by name
  EXPECT_EQ(u.error().code(), Errc::kNotFound);
  EXPECT_TRUE(ResolveUser(*root, "0"));
}

TEST(Files, HostsResolvInitLayer) {
  EXPECT_EQ(FilterResolvConf("nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch x\n"),
            "nameserver 10.0.0.1\nsearch x\n");
  EXPECT_NE(HostsFile("h").find("127.0.0.1\tlocalhost"), std::string::npos);
  auto tmp = ScopedTempDir::Make("/tmp", "shale-init-layer-");
  ASSERT_TRUE(tmp);
  auto d = Dir::Open(tmp->path());
  ASSERT_TRUE(d);
  ASSERT_TRUE(FillInitLayer(*d));
  for (const char* f : {"etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv",
                        "dev/console", "dev/pts", "dev/shm", "proc", "sys"})
    EXPECT_TRUE(PathExists(tmp->path() + "/" + f)) << f;
  char buf[64] = {0};
  ASSERT_GT(readlink((tmp->path() + "/etc/mtab").c_str(), buf, sizeof(buf) - 1), 0);
  EXPECT_STREQ(buf, "/proc/mounts");
}

TEST(Status, TextsAndSignals) {
  State s;
  EXPECT_EQ(StatusText(s, 0), "Created");
  s.status = "running";
  s.started_ns = 0;
  EXPECT_EQ(StatusText(s, 3000000000), "Up 3 seconds");
  s.status = "exited";
  s.exit_code = 3;
  s.finished_ns = 1;
  EXPECT_EQ(StatusText(s, 2000000001), "Exited (3) 2 seconds ago");
  EXPECT_EQ(HumanDuration(90), "About a minute");
  EXPECT_EQ(*ParseSignal("KILL"), 9);
  EXPECT_EQ(*ParseSignal("sigterm"), 15);
  EXPECT_EQ(*ParseSignal("10"), 10);
  EXPECT_FALSE(ParseSignal("NOPE"));
  EXPECT_TRUE(ValidName("c1"));
  EXPECT_FALSE(ValidName("../x"));
  EXPECT_TRUE(ValidName(RandomName()));
}

}  // namespace
}  // namespace shale::container

namespace shale::container {
namespace {

// Issue 7 item 3: ids past 2^31-1 wrapped to root.
TEST(ResolveUser, IdsOutOfRangeAreRefusedNeverWrapped) {
  std::string passwd = "root:x:0:0:root:/root:/bin/sh\nbig:x:4294967296:0::/:/bin/sh\n";
  std::string group = "root:x:0:\nbigg:x:4294967296:\n";
  for (const char* spec : {"4294967296", "4294967295", "2147483648", "0:4294967296",
                           "99999999999999999999", "99999999999999999999999", "big",
                           "0:bigg"}) {
    auto u = ResolveUserFrom(spec, passwd, group);
    EXPECT_FALSE(u) << spec << " resolved to uid " << (u ? u->uid : 0) << " gid "
                    << (u ? u->gid : 0);
  }
  auto ok = ResolveUserFrom("2147483647:2147483647", passwd, group);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->uid, 2147483647u);
}

TEST(ResolveUser, HomeFromPasswdElseRootOrSlash) {
  std::string passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
  std::string home;
  ASSERT_TRUE(ResolveUserFrom("alice", passwd, "", &home));
  EXPECT_EQ(home, "/home/alice");
  ASSERT_TRUE(ResolveUserFrom("", passwd, "", &home));
  EXPECT_EQ(home, "/root");
  ASSERT_TRUE(ResolveUserFrom("0", "", "", &home));
  EXPECT_EQ(home, "/root");
  ASSERT_TRUE(ResolveUserFrom("4242", passwd, "", &home));
  EXPECT_EQ(home, "/");
}

// Issue 7 item 9: a per-entry scan made this quadratic (300k entries: over a minute).
TEST(MergeEnv, LinearOnLargeListsKeepsFirstPositions) {
  std::vector<std::string> env, more;
  for (int i = 0; i < 300000; ++i) env.push_back("K" + std::to_string(i) + "=a");
  for (int i = 0; i < 300000; i += 2) more.push_back("K" + std::to_string(i) + "=b");
  more.push_back("NEW=1");
  MergeEnv(env, more);
  ASSERT_EQ(env.size(), 300001u);
  EXPECT_EQ(env[0], "K0=b");
  EXPECT_EQ(env[1], "K1=a");
  EXPECT_EQ(env[299998], "K299998=b");
  EXPECT_EQ(env.back(), "NEW=1");
}

TEST(ParseUlimit, HugeValuesAndFloorsAreRefusedWithTheReason) {
  EXPECT_FALSE(ParseUlimit("nofile=99999999999999999999"));
  auto zero = ParseUlimit("nofile=0");
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message().find("too low"), std::string::npos);
  EXPECT_FALSE(ParseUlimit("as=1"));
  EXPECT_TRUE(ParseUlimit("nofile=1024:2048"));
  EXPECT_TRUE(ParseUlimit("as=unlimited"));
  EXPECT_TRUE(ParseUlimit("stack=8388608"));
}

TEST(ParseVolume, RefusesRootAndProcDestinations) {
  for (const char* bad : {"/host:/", "/host://", "/host:/.", "/host:/proc", "/host:/proc/",
                          "/host:/./proc/sys", "/host:/a/../proc"}) {
    EXPECT_FALSE(ParseVolume(bad)) << bad;
  }
  auto root = ParseVolume("/host:/");
  EXPECT_NE(root.error().message().find("destination can't be '/'"), std::string::npos);
  auto ok = ParseVolume("/host:/data/:ro");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->destination, "/data");
  EXPECT_TRUE(ok->readonly);
}

TEST(MergeConfig, RefusesABadStopSignalHugeMemoryAndPids) {
  CreateOptions o;
  o.cmd = {"true"};
  EXPECT_FALSE(MergeConfig(json{{"StopSignal", "SIGFOO"}}, o, kId, "h", {}));
  EXPECT_TRUE(MergeConfig(json{{"StopSignal", "SIGUSR1"}}, o, kId, "h", {}));
  o.memory = "99999999999999999999g";
  auto m = MergeConfig(json::object(), o, kId, "h", {});
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message().find("minimum"), std::string::npos) << m.error().message();
  o.memory = "";
  o.pids_limit = "99999999999999999999";
  EXPECT_FALSE(MergeConfig(json::object(), o, kId, "h", {}));
  o.pids_limit = "-1";
  auto un = MergeConfig(json::object(), o, kId, "h", {});
  ASSERT_TRUE(un);
  EXPECT_EQ(un->second.pids_limit, -1);
}

TEST(BuildSpec, SetsHomeUnlessTheEnvHasIt) {
  CreateOptions o;
  o.cmd = {"true"};
  auto m = MergeConfig(json::object(), o, kId, "h", {});
  ASSERT_TRUE(m);
  SpecPaths p{"/merged", "/c/hostname", "/c/hosts", "/c/resolv.conf", "", "/root"};
  auto s = BuildSpec(kId, m->first, m->second, {}, p);
  ASSERT_TRUE(s);
  EXPECT_NE(std::find(s->process.env.begin(), s->process.env.end(), "HOME=/root"),
            s->process.env.end());
  o.env = {"HOME=/elsewhere"};
  m = MergeConfig(json::object(), o, kId, "h", {});
  s = BuildSpec(kId, m->first, m->second, {}, p);
  EXPECT_EQ(std::count_if(s->process.env.begin(), s->process.env.end(),
                          [](const std::string& e) { return e.rfind("HOME=", 0) == 0; }),
            1);
}

}  // namespace
}  // namespace shale::container
