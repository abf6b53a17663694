#include "network/firewall.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "util/fd.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

extern char** environ;

namespace shale::network {
namespace {

constexpr const char* kForward = "SHALE-FORWARD";
constexpr const char* kIsolation = "SHALE-ISOLATION";
constexpr const char* kPostrouting = "SHALE-POSTROUTING";

// Runs args; stderr into *err when given, else discarded.
int Spawn(std::vector<std::string> args, std::string* err) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipefd[2] = {-1, -1};
  if (err && pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (err) posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  else posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    if (err) *err = std::string(argv[0]) + ": " + strerror(rc);
    return -1;
  }
  wr.reset();
  if (err) {
    char buf[512];
    ssize_t n;
    while ((n = read(rd.get(), buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
      if (n > 0 && err->size() < 4096) err->append(buf, static_cast<size_t>(n));
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::vector<std::string> Iptables(const std::string& table, const std::string& op,
                                  const std::string& chain, const std::vector<std::string>& rest) {
  std::vector<std::string> a = {"iptables", "-w", "-t", table, op, chain};
  a.insert(a.end(), rest.begin(), rest.end());
  return a;
}

Result<void> Must(std::vector<std::string> args) {
  std::string err;
  int rc = Spawn(args, &err);
  if (rc == 0) return Ok();
  return Error(Errc::kIo, Join(args, " ") + " failed (exit " + std::to_string(rc) +
                              "): " + std::string(Trim(err)));
}

// Creates the chain if missing; with `from`, makes that builtin chain jump to it.
Result<void> EnsureChain(const std::string& table, const std::string& chain,
                         const std::string& from = "", bool first = false) {
  if (Spawn({"iptables", "-w", "-t", table, "-n", "-L", chain}, nullptr) != 0)
    TRY(Must(Iptables(table, "-N", chain, {})));
  if (from.empty()) return Ok();
  std::vector<std::string> jump = {"-j", chain};
  if (Spawn(Iptables(table, "-C", from, jump), nullptr) == 0) return Ok();
  if (first) jump.insert(jump.begin(), "1");
  return Must(Iptables(table, first ? "-I" : "-A", from, jump));
}

Result<FileLock> MachineLock() {
  TRY(MakeDirsAbs("/run/shale", 0755));
  return FileLock::Acquire("/run/shale/iptables.lock", FileLock::Mode::kExclusive);
}

}  // namespace

int RunTool(std::vector<std::string> args) { return Spawn(std::move(args), nullptr); }

std::vector<FirewallRule> NetworkRules(const NetworkFirewall& n) {
  const std::string& b = n.bridge;
  std::vector<FirewallRule> r;
  r.push_back({"filter", kForward, true, {"-i", b, "!", "-o", b, "-j", kIsolation}});
  r.push_back({"filter", kIsolation, false, {"-o", b, "-j", "DROP"}});
  r.push_back({"filter", kForward, false,
               {"-o", b, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}});
  r.push_back({"filter", kForward, false, {"-i", b, "-o", b, "-j", "ACCEPT"}});
  if (n.internal) return r;
  r.push_back({"filter", kForward, false, {"-i", b, "!", "-o", b, "-j", "ACCEPT"}});
  // Published ports: portmap DNATs them to the container; let those connections in.
  r.push_back({"filter", kForward, false,
               {"-o", b, "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT"}});
  r.push_back({"nat", kPostrouting, false,
               {"-s", FormatSubnet(n.subnet), "!", "-o", b, "-j", "MASQUERADE"}});
  return r;
}

Result<void> InstallNetworkRules(const NetworkFirewall& n) {
  FileLock lock = TRY(MachineLock());
  auto install = [&]() -> Result<void> {
    TRY(EnsureChain("filter", kIsolation));
    TRY(EnsureChain("filter", kForward, "FORWARD", true));
    TRY(EnsureChain("nat", kPostrouting, "POSTROUTING"));
    for (const FirewallRule& rule : NetworkRules(n)) {
      if (Spawn(Iptables(rule.table, "-C", rule.chain, rule.match), nullptr) == 0) continue;
      std::vector<std::string> rest = rule.match;
      if (rule.first) rest.insert(rest.begin(), "1");
      TRY(Must(Iptables(rule.table, rule.first ? "-I" : "-A", rule.chain, rest)));
    }
    return Ok();
  };
  if (auto r = install(); !r)
    return std::move(r).error().Wrap("set up the firewall rules of bridge " + n.bridge);
  return Ok();
}

void RemoveNetworkRules(const NetworkFirewall& n) {
  auto lock = MachineLock();
  for (const FirewallRule& rule : NetworkRules(n))
    while (Spawn(Iptables(rule.table, "-D", rule.chain, rule.match), nullptr) == 0) {
    }
}

}  // namespace shale::network
