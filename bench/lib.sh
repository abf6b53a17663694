# Shared helpers for the benchmarks (source it). IO benchmarks run on a loop-mounted ext4:
# / on these machines is mounted with `discard`, which makes writing right after deleting
# slow and bimodal.
set -euo pipefail
BENCH_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHALE="${SHALE_BIN:-$BENCH_REPO/build/shale}"
BENCH_CACHE="${BENCH_CACHE:-/var/cache/shale-bench}"
BENCH_MNT="${BENCH_MNT:-/mnt/shale-bench}"

need_pkg() {  # need_pkg CMD PACKAGE
  command -v "$1" >/dev/null && return 0
  echo "bench: installing $2" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

# The loop file behind $BENCH_MNT; one per mount point, so benchmarks can run side by side.
bench_loop_img() { echo "$BENCH_CACHE/$(basename "$BENCH_MNT").img"; }

# Mounts a fresh 6 GiB ext4 at $BENCH_MNT (removed by bench_cleanup).
bench_loop_mount() {
  mkdir -p "$BENCH_MNT" "$BENCH_CACHE"
  if mountpoint -q "$BENCH_MNT"; then umount -l "$BENCH_MNT"; fi
  truncate -s 6G "$(bench_loop_img)"
  # No lazy init: a background thread zeroing inode tables would skew the first minutes.
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$(bench_loop_img)"
  mount -o loop "$(bench_loop_img)" "$BENCH_MNT"
}

bench_cleanup() {
  if [ -d "$BENCH_MNT" ]; then
    awk -v r="$BENCH_MNT/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
    umount -l "$BENCH_MNT" 2>/dev/null || true
  fi
  rm -f "$(bench_loop_img)"
}

# The Debian mirror this machine's apt uses (deb822 .sources or the one-line format): the
# first archive URI that is not the security archive. Never written into the repo.
apt_mirror() {
  local uri
  uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i } $1 == "deb" { print ($2 ~ /^\[/ ? $3 : $2) }' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v -- '-security' | head -1)
  [ -n "$uri" ] || { echo "bench: no Debian mirror in apt's sources" >&2; return 1; }
  echo "$uri"
}

# The large image's rootfs: debootstrap --variant=minbase bookworm (~6,700 files), made once.
bench_debootstrap_rootfs() {
  local dir="$BENCH_CACHE/rootfs"
  if [ ! -x "$dir/bin/bash" ]; then
    need_pkg debootstrap debootstrap
    rm -rf "$dir"
    debootstrap --variant=minbase bookworm "$dir" "$(apt_mirror)" >&2
    rm -rf "$dir"/var/cache/apt/archives/*.deb
  fi
  echo "$dir"
}

# A podman with its own store under the loop mount and the two settings podman needs here
# (default_ulimits: the hard nofile/nproc limits cannot be raised; runc: crun refuses this
# machine's hybrid cgroup layout). Writes $BENCH_MNT/podman.sh so hyperfine can call it.
podman_bench() {
  local d="$BENCH_MNT/podman"
  if [ ! -x "$BENCH_MNT/podman.sh" ]; then
    mkdir -p "$d"
    cat >"$d/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
    cat >"$BENCH_MNT/podman.sh" <<SH
#!/bin/sh
CONTAINERS_CONF="$d/containers.conf" exec podman --root "$d/storage" --runroot "$d/run" \\
  --storage-driver overlay "\$@"
SH
    chmod +x "$BENCH_MNT/podman.sh"
  fi
  "$BENCH_MNT/podman.sh" "$@"
}
