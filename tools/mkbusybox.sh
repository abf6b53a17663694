#!/usr/bin/env bash
# Makes the built-in busybox image's rootfs in DIR from Debian's busybox-static
# (/bin/busybox): bin/busybox plus a hard link for every applet at the path
# `busybox --list-full` gives (as Docker's busybox image links its applets), etc/passwd and
# etc/group (root, nobody), tmp (1777), root/home/var. Every mtime is fixed, so the same
# busybox gives the same tree and `shale import DIR` gives the same diffID.
# Installs nothing: the README's setup installs busybox-static.
# Usage: tools/mkbusybox.sh DIR
set -euo pipefail
dir="${1:?usage: mkbusybox.sh DIR}"
bb="${BUSYBOX:-/bin/busybox}"
if ! "$bb" --list-full >/dev/null 2>&1; then
  echo "mkbusybox: $bb is not a busybox binary (apt-get install busybox-static)" >&2
  exit 1
fi
if file -L "$bb" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "mkbusybox: $bb is dynamically linked; the image needs busybox-static" >&2
  exit 1
fi
mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin etc root home var/spool/mail var/www tmp dev proc sys
install -m 0755 "$bb" bin/busybox
"$bb" --list-full | while read -r applet; do
  [ "$applet" = "bin/busybox" ] && continue
  mkdir -p "$(dirname "$applet")"
  ln -f bin/busybox "$applet"
done
cat >etc/passwd <<'PW'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
PW
cat >etc/group <<'GR'
root:x:0:
nogroup:x:65534:
GR
: >etc/shadow
chmod 0640 etc/shadow
chmod 0700 root
chmod 1777 tmp
chown -R 0:0 . 2>/dev/null || true
# Deterministic times: SOURCE_DATE_EPOCH or the busybox binary's own mtime.
epoch="${SOURCE_DATE_EPOCH:-$(stat -c %Y "$bb")}"
find . -exec touch -h -d "@$epoch" {} +
echo "$dir"
