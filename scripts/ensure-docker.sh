#!/usr/bin/env bash
# Make a Docker engine answer `docker info`: install Debian's docker.io when the engine is
# missing, start it (systemd when it is PID 1, else a background dockerd) and wait for it.
# Idempotent and quick when the engine already runs. Needs root for the install/start.
set -euo pipefail

log() { echo "ensure-docker: $*" >&2; }

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    log "the Docker engine does not answer and installing/starting it needs root"
    exit 1
fi

# /usr/local/bin/docker (a newer client) may exist without any engine: test for dockerd.
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
    log "starting docker with systemctl"
    systemctl start docker || true
elif ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/labspace-dockerd.log)"
    nohup dockerd >/var/log/labspace-dockerd.log 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
    if engine_up; then
        log "engine ready"
        exit 0
    fi
    sleep 1
done
log "the Docker engine did not answer within 60 s; last log lines:"
tail -n 20 /var/log/labspace-dockerd.log >&2 2>/dev/null || true
exit 1
