#!/usr/bin/env bash
# One-step set-up on a fresh Debian 12 machine, as root:
#   tools/quickstart.sh demo   install packages, build, run the demo on the built-in busybox image
#   tools/quickstart.sh test   install packages, build, run every test (gtest + bats), then
#                              the unit tests and the export/commit/load/run suites again
#                              under ASan/UBSan (build-asan/); skips count as failures
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-demo}"

if [ "$(id -u)" != 0 ]; then
  echo "quickstart: run as root (containers need namespaces, mounts and cgroups)" >&2
  exit 1
fi

# Build and run-time dependencies, all from Debian.
PACKAGES=(cmake g++ make pkg-config libarchive-dev libssl-dev libcurl4-openssl-dev
  nlohmann-json3-dev libcli11-dev libseccomp-dev libcap-dev zlib1g-dev libzstd-dev libisal-dev
  libgtest-dev bats busybox-static jq tar gzip zstd pigz e2fsprogs util-linux kmod
  containernetworking-plugins iptables iproute2)
# containernetworking-plugins: the default network mode is a CNI bridge (docs/network.md), so
# every `run` needs the plugins, and bridge/portmap/firewall call iptables.
# The tests also check interop with the peers (docker, podman and skopeo read what shale
# writes, and shale reads what they write).
# The registry tests run Debian's docker-registry (with htpasswd users and an openssl-made
# CA); some fixtures are written with python3's tarfile.
if [ "$what" = test ]; then
  PACKAGES+=(podman skopeo runc crun containerd uidmap docker.io tmux docker-registry apache2-utils openssl
    curl python3 time)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "quickstart: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
modprobe overlay 2>/dev/null || true

# ccache when present (a CI cache, or a developer's machine); plain builds otherwise.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
build_tree() {  # build_tree DIR [CMAKE_ARGS...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "$@" >/dev/null
  make -C "$dir" -j"$(nproc)" --no-print-directory shale shale-init shale_unit_tests shale_probe shale_seccomp_agent 2>&1 | grep -vE '^\[|^make' || true
  test -x "$dir/shale"
}
# -g1: line tables only (backtraces, perf and sanitizer reports keep file:line), ~30% less
# compile time than -g (container/spec.cc: 10.9 s with -g, 7.6 s with -g1); a developer's
# own tree can take full -g.
build_tree build -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"

case "$what" in
  demo) exec tools/demo.sh ;;
  test)
    # The CI job: a second tree under ASan/UBSan runs the unit tests and the export, commit,
    # load and run suites again (tests/run.sh); every skip is a failure here, since this
    # script installed every dependency.
    # -O1: under the sanitizers -O2 costs 3.3x a normal compile, -O1 1.85x (monitor.cc: 38 s,
    # 21 s, 11.5 s normal). -g1 (line tables: reports keep file:line) takes another 30% off
    # (container/spec.cc: 21 s with -g, 15 s with -g1).
    build_tree build-asan -DSHALE_SANITIZE=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
    SHALE_CI=1 exec tests/run.sh build build-asan ;;
  *) echo "usage: tools/quickstart.sh demo|test" >&2; exit 2 ;;
esac
