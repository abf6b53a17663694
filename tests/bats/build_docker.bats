#!/usr/bin/env bats
# shale build against docker's classic builder: the same Dockerfile and context built by
# both (a private dockerd, `DOCKER_BUILDKIT=0 docker build --network none`), docker's image
# loaded into the shale store, then the merged views compared file by file (type, mode,
# owner, link target, bytes; mtimes aside), the config fields and the layer count.

load helpers

setup_file() {
  private_dockerd_start || return 0
  [ -n "${DK_DIR:-}" ] || return 0
  # docker gets shale's busybox, so both builds start from the same image.
  local root="$BATS_FILE_TMPDIR/seed-root"
  mkdir -p "$root"
  "$SHALE_BIN" --root "$root" import "$(busybox_rootfs)" busybox:latest >/dev/null
  "$SHALE_BIN" --root "$root" save busybox:latest | docker load >/dev/null
  rm -rf "$root"
}
teardown_file() { private_dockerd_stop; }

setup() { build_setup; }
teardown() { common_teardown; }

# Every entry of a merged view: path, type, mode, owner, link target, and a file's sha256.
listing() {
  (cd "$1" && find . -printf '%p %y %m %U:%G %l\n' | sort) >"$2"
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >>"$2"
}

# build_both NAME [build flags...]: builds $C with docker and shale, loads docker's image
# into the shale store as docker-NAME:latest, and compares the two.
build_both() {
  local name="$1"
  shift
  DOCKER_BUILDKIT=0 docker build --network none -q -t "docker-$name" "$@" "$C" >/dev/null
  docker save "docker-$name" | shale load >/dev/null
  docker rmi "docker-$name" >/dev/null
  shale build -q -t "shale-$name" "$@" "$C" >/dev/null
  local f
  for f in Env Cmd Entrypoint WorkingDir User Labels ExposedPorts Volumes StopSignal Shell \
           Healthcheck OnBuild; do
    local d s
    # docker's Go structs write "" for an unset string: that is no value, as null is.
    d=$(shale inspect "docker-$name" | jq -cS ".[0].Config.$f | if . == \"\" then null else . end")
    s=$(shale inspect "shale-$name" | jq -cS ".[0].Config.$f | if . == \"\" then null else . end")
    if [ "$d" != "$s" ]; then
      echo "Config.$f differs: docker $d, shale $s" >&2
      return 1
    fi
  done
  local dl sl
  dl=$(shale inspect "docker-$name" | jq '.[0].RootFS.Layers | length')
  sl=$(shale inspect "shale-$name" | jq '.[0].RootFS.Layers | length')
  if [ "$dl" != "$sl" ]; then
    echo "layers differ: docker $dl, shale $sl" >&2
    return 1
  fi
  listing "$(shale mount "docker-$name")" "$BATS_TEST_TMPDIR/docker.list"
  listing "$(shale mount "shale-$name")" "$BATS_TEST_TMPDIR/shale.list"
  shale umount "docker-$name" >/dev/null
  shale umount "shale-$name" >/dev/null
  diff -u "$BATS_TEST_TMPDIR/docker.list" "$BATS_TEST_TMPDIR/shale.list" >&2
}

@test "build vs docker: config instructions, RUN, COPY and ADD rules give the same image" {
  need_docker
  echo hello >"$C/f.txt"
  mkdir -p "$C/dir/a" "$BATS_TEST_TMPDIR/t/in"
  echo x >"$C/dir/a/b"
  chmod 0751 "$C/dir/a"
  chmod 0604 "$C/dir/a/b"
  ln -s a/b "$C/dir/link"
  echo 1 >"$C/g1.txt"
  echo 2 >"$C/g2.txt"
  echo t >"$BATS_TEST_TMPDIR/t/in/file"
  tar -cf "$C/arch.tar" -C "$BATS_TEST_TMPDIR/t" in
  printf 'g2.txt\n' >"$C/.dockerignore"
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
ARG GREETING=hi
ENV A=1 B="two words"
ENV C $A-x
RUN echo $GREETING > /greet && mkdir -p /var/made && rm -f /bin/vi
COPY f.txt /data/
COPY f.txt /data/renamed
COPY dir /copied/
COPY dir/ /etc/
COPY --chown=123:45 g*.txt /globbed/
ADD arch.tar /unpacked/
WORKDIR rel
WORKDIR /abs
WORKDIR /abs
COPY f.txt .
USER 1000:1000
LABEL x=y "multi word"="v v"
EXPOSE 80 443/udp
VOLUME ["/vol", "/vol2"]
STOPSIGNAL SIGKILL
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo child
SHELL ["/bin/sh", "-xc"]
ENTRYPOINT echo ep
CMD ["a", "b"]
EOF
  build_both full --build-arg GREETING=hello
}

@test "build vs docker: multi-stage, FROM scratch, --target" {
  need_docker
  echo payload >"$C/p"
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox AS build
RUN mkdir /out && echo made > /out/m && chmod 0700 /out
FROM scratch AS final
COPY --from=build /out /out
COPY p /
ENV X=1
CMD ["/nothing"]
FROM busybox AS other
RUN echo other > /o
EOF
  build_both scratch --target final
  build_both other
}
