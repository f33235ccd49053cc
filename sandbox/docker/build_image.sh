#!/usr/bin/env bash
# Build the sandbox image codeloop-sandbox:1 offline (no container registry), from Debian packages.
#
#   sudo bash sandbox/docker/build_image.sh          # idempotent; exits 0 when the image exists
#
# Contents: Debian bookworm minbase + python3 (3.11, stdlib only), g++ (12) and nodejs (18).
# How: debootstrap downloads the .debs once into a cached tarball ($CACHE/bookworm-debs.tgz), unpacks
# them into a scratch rootfs, strips docs/caches, writes $CACHE/rootfs.tar and `docker import`s it.
# Re-runs reuse $CACHE/rootfs.tar (import only, seconds) or the .deb tarball (no downloads).
# Delete $CACHE to rebuild from scratch. Env: CODELOOP_CACHE (default /var/cache/codeloop),
# CODELOOP_SANDBOX_IMAGE (default codeloop-sandbox:1), DEBIAN_MIRROR (default http://deb.debian.org/debian).
#
# Users: the sandbox worker inside the container runs as root and setuid()s to uids 60000-60999 per
# run; those uids need no /etc/passwd entry, so the image adds none. The build checks that
# setgid/setuid to 60001 works inside `docker run`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${CODELOOP_SANDBOX_IMAGE:-codeloop-sandbox:1}
CACHE=${CODELOOP_CACHE:-/var/cache/codeloop}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
INCLUDE=python3,g++,nodejs
DEBS=$CACHE/$SUITE-debs.tgz
ROOTFS_TAR=$CACHE/rootfs.tar

say() { echo "[build_image] $*"; }
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 )) s"; }

bash "$HERE/ensure_docker.sh"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "image $IMAGE already exists"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then say "must run as root (debootstrap)"; exit 1; fi
mkdir -p "$CACHE"

if [ ! -s "$ROOTFS_TAR" ]; then
  if ! command -v debootstrap >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show debootstrap >/dev/null 2>&1 || apt-get update -qq
    say "apt-get install debootstrap"
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi

  # 1. download the .debs once (debootstrap --make-tarball needs a scratch target dir)
  if [ ! -s "$DEBS" ]; then
    say "downloading $SUITE minbase + $INCLUDE from $MIRROR"
    work=$(mktemp -d "$CACHE/dl.XXXXXX")
    debootstrap --variant=minbase --include="$INCLUDE" --make-tarball="$DEBS.part" \
        "$SUITE" "$work" "$MIRROR" >"$CACHE/debootstrap-download.log" 2>&1 \
      || { say "debootstrap download failed; see $CACHE/debootstrap-download.log"; exit 1; }
    rm -rf "$work"
    mv "$DEBS.part" "$DEBS"
    say "cached .debs in $DEBS ($(du -h "$DEBS" | cut -f1), $(elapsed))"
  fi

  # 2. install them into a scratch rootfs
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrap into $rootfs"
  debootstrap --variant=minbase --include="$INCLUDE" --unpack-tarball="$DEBS" \
      "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap-install.log" 2>&1 \
    || { say "debootstrap failed; see $CACHE/debootstrap-install.log"; exit 1; }
  say "rootfs installed ($(elapsed))"

  # 3. strip what a sandbox never needs
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
         "$rootfs"/usr/share/locale/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/*
  # Keep (and complete) the stdlib .pyc files: the container root is read-only, so Python could never
  # cache them at run time and every interpreter start would recompile what it imports.
  chroot "$rootfs" python3 -m compileall -q -j0 /usr/lib/python3.11 /usr/lib/python3/dist-packages \
    >/dev/null 2>&1 || true
  : >"$rootfs"/etc/resolv.conf   # network is off in the sandbox; docker bind-mounts its own anyway
  echo "$IMAGE built $(date -u +%FT%TZ) from $SUITE $INCLUDE" >"$rootfs"/etc/codeloop-sandbox-release
  say "rootfs size after strip: $(du -sh "$rootfs" | cut -f1)"

  tar --numeric-owner --xattrs -C "$rootfs" -cf "$ROOTFS_TAR.part" .
  mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
  rm -rf "$rootfs"; trap - EXIT
fi

# 4. import under a candidate tag; it becomes $IMAGE only once the checks below pass
CANDIDATE=$IMAGE-candidate
say "docker import $ROOTFS_TAR -> $CANDIDATE"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'WORKDIR /' \
    --change 'CMD ["python3"]' \
    --message "codeloop sandbox: $SUITE minbase + $INCLUDE" \
    "$ROOTFS_TAR" "$CANDIDATE" >/dev/null

# 5. check what the sandbox relies on, under the same restrictions it will run with.
# Docker mounts --tmpfs noexec unless told "exec": compiled C++ runs from /tmp, so pass it.
say "checking $CANDIDATE"
docker run --rm --network none --read-only --tmpfs /tmp:size=64m,exec "$CANDIDATE" sh -ec '
  python3 --version
  g++ --version | head -n1
  echo "node $(node --version)"
  python3 -c "import os; os.setgid(60001); os.setuid(60001); assert os.getuid() == 60001; print(\"setuid 60001 ok\")"
  printf "#include <cstdio>\nint main(){std::puts(\"g++ ok\");}\n" >/tmp/a.cc && g++ -o /tmp/a /tmp/a.cc && /tmp/a
  node -e "console.log(\"node ok\")"
'   | sed 's/^/    /'
docker tag "$CANDIDATE" "$IMAGE"
docker rmi "$CANDIDATE" >/dev/null
say "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')) in $(elapsed)"
