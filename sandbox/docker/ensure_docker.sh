#!/usr/bin/env bash
# Make sure a working Docker daemon is reachable at /var/run/docker.sock.
#
#   sudo bash sandbox/docker/ensure_docker.sh        # idempotent; exits 0 when `docker info` works
#
# Steps, each skipped when not needed:
#   1. `docker info` already works            -> exit 0.
#   2. no dockerd binary                       -> apt-get install docker.io (apt-get update only when
#                                                 the package is unknown to apt).
#   3. start dockerd in the background (log: $DOCKERD_LOG, default /var/log/dockerd.log) and wait
#      up to $DOCKERD_WAIT seconds (default 60) for `docker info`.
#
# dockerd flags (see README.md): the sandbox only runs containers with network_mode=none, so the
# daemon touches no host networking: --iptables=false (no NAT/FORWARD rules, no FORWARD DROP policy),
# --bridge=none (no docker0), --ip-forward=false. Storage: overlay2, falling back to vfs when
# overlay2 cannot start (e.g. /var/lib/docker itself on overlayfs). Cgroup driver: dockerd's default
# (cgroupfs), which works with the cgroup v1 hierarchy of this machine kind.
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT=${DOCKERD_WAIT:-60}
SOCK=/var/run/docker.sock
DOCKER_HOST_FLAG="unix://$SOCK"

say() { echo "[ensure_docker] $*"; }

docker_ok() { docker -H "$DOCKER_HOST_FLAG" info >/dev/null 2>&1; }

if command -v docker >/dev/null && docker_ok; then
  say "docker daemon already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then say "must run as root to install/start dockerd"; exit 1; fi

# Serialise concurrent callers (two CI steps, two test sessions); re-check once we hold the lock.
exec 9>/var/lock/codeloop-ensure-docker.lock
flock 9
if command -v docker >/dev/null && docker_ok; then say "docker daemon started by another caller"; exit 0; fi

# --- 1. install ---------------------------------------------------------------------------------
if ! command -v dockerd >/dev/null || ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show docker.io >/dev/null 2>&1; then
    say "apt-get update"
    apt-get update -qq
  fi
  say "apt-get install docker.io"
  t0=$(date +%s)
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  say "installed docker.io in $(( $(date +%s) - t0 )) s"
  # Under systemd the package starts its own service; take that if it answers.
  for _ in 1 2 3 4 5; do
    if docker_ok; then say "docker daemon started by the package"; exit 0; fi
    sleep 1
  done
fi
# A /usr/local/bin/docker client may shadow the package's /usr/bin/docker; either talks to dockerd
# (the CLI negotiates the API version down), so only the daemon side matters here.

# --- 2. start dockerd ---------------------------------------------------------------------------
# A dockerd that is alive but not (yet) answering: wait for it instead of starting a second one.
if pid=$(pgrep -x dockerd | head -n1) && [ -n "$pid" ]; then
  say "dockerd (pid $pid) already running; waiting for it"
  for _ in $(seq "$WAIT"); do
    if docker_ok; then say "docker daemon ready"; exit 0; fi
    sleep 1
  done
  say "dockerd pid $pid does not answer after ${WAIT}s; see $LOG"; exit 1
fi
# Stale pid files from a killed daemon make dockerd/containerd refuse to start.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid

start_dockerd() {  # $1 = storage driver
  say "starting dockerd --storage-driver=$1 (log: $LOG)"
  mkdir -p "$(dirname "$LOG")"
  setsid nohup dockerd \
      --host="$DOCKER_HOST_FLAG" \
      --storage-driver="$1" \
      --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
      >>"$LOG" 2>&1 </dev/null 9>&- &   # 9>&-: the daemon must not inherit (and hold) the lock
  local pid=$! t0
  t0=$(date +%s)
  for _ in $(seq "$WAIT"); do
    if docker_ok; then
      say "docker daemon ready after $(( $(date +%s) - t0 )) s (pid $pid, storage $1)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "dockerd --storage-driver=$1 exited; last log lines:"; tail -n 5 "$LOG" | sed 's/^/    /'
      return 1
    fi
    sleep 1
  done
  say "dockerd --storage-driver=$1 did not answer within ${WAIT}s; stopping it"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 15); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  return 1
}

for driver in overlay2 vfs; do
  if start_dockerd "$driver"; then exit 0; fi
  rm -f /var/run/docker.pid
done
say "could not start dockerd; see $LOG"
exit 1
