#!/usr/bin/env bash
# Install and run labspace on a Debian 12 / Ubuntu 22.04+ server, as root:
#
#     ./install.sh
#
# (A minimal Debian server has no sudo: log in as root. A user with sudo rights may run
# `sudo ./install.sh` instead.)
#
# Installs what is missing (Python venv in /opt/labspace, the Docker engine from the
# distribution's packages when none runs), builds the default workspace image when it is
# missing, creates /etc/labspace/labspace.toml, the data directory and the first admin, starts
# the proxy and the hub, and prints the URL and the admin's one-time password.
# Run again: quick, and it changes nothing that is already right.
#
# Environment: LABSPACE_PREFIX (/opt/labspace), LABSPACE_PORT (8000), LABSPACE_ADMIN (admin),
# LABSPACE_CONFIG (/etc/labspace/labspace.toml), LABSPACE_DATA (/var/lib/labspace) and
# LABSPACE_PUBLIC_URL (http://localhost:PORT; both written into a new configuration file),
# LABSPACE_NO_SYSTEMD=1 (background processes even where systemd runs; the tests use it).
set -euo pipefail

SRC=$(cd "$(dirname "$0")" && pwd)
PREFIX=${LABSPACE_PREFIX:-/opt/labspace}
PORT=${LABSPACE_PORT:-8000}
ADMIN=${LABSPACE_ADMIN:-admin}
CONFIG=${LABSPACE_CONFIG:-/etc/labspace/labspace.toml}
DATA=${LABSPACE_DATA:-/var/lib/labspace}
PUBLIC_URL=${LABSPACE_PUBLIC_URL:-http://localhost:$PORT}
export LABSPACE_CONFIG=$CONFIG

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (as another user with sudo rights: sudo ./install.sh)"

# 1. Debian packages -------------------------------------------------------------------------
missing=()
for pkg in python3 python3-venv python3-pip debootstrap ca-certificates curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "labspace needs Python 3.11 or newer (found $(python3 --version))"

# 2. The Docker engine -------------------------------------------------------------------------
step "checking the Docker engine"
bash "$SRC/scripts/ensure-docker.sh"

# 3. labspace in its own virtual environment (reinstalled only when the source changed) -------
want=$(cd "$SRC" && find pyproject.toml src/labspace -type f -not -path '*/__pycache__/*' -print0 | sort -z \
       | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
stamp=$PREFIX/.source-sha256
changed=0
if [ ! -x "$PREFIX/venv/bin/labspace" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    step "installing labspace into $PREFIX/venv"
    python3 -m venv "$PREFIX/venv"
    "$PREFIX/venv/bin/pip" install -q --disable-pip-version-check "$SRC"
    echo "$want" > "$stamp"
    changed=1
fi
LABSPACE=$PREFIX/venv/bin/labspace

# 4. Configuration ------------------------------------------------------------------------------
if [ ! -f "$CONFIG" ]; then
    step "writing $CONFIG"
    mkdir -p "$(dirname "$CONFIG")"
    # Each workspace gets its own host (origin) under apps_domain. Browsers resolve every
    # name under localhost to this machine, so a local URL gets a working default at once.
    url_host=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname or "")' "$PUBLIC_URL")
    case "$url_host" in
        localhost|127.0.0.1|::1) apps="apps_domain = \"apps.localhost\"" ;;
        *.localhost) apps="apps_domain = \"apps.$url_host\"" ;;
        *) apps="# apps_domain = \"apps.lab.example.org\"   # wildcard DNS and certificate" ;;
    esac
    cat > "$CONFIG" <<TOML
# labspace configuration: every option is listed by \`labspace config reference\`.
data_dir = "$DATA"
public_port = $PORT
# The address people use; for the lab: "https://lab.example.org" behind a TLS front end.
public_url = "$PUBLIC_URL"
# Each workspace on a host of its own: for the lab, "apps.lab.example.org" with wildcard DNS
# (*.apps.lab.example.org) and a wildcard certificate (see docs/admin.md, "Origins").
$apps
TOML
fi

# 5. The default workspace image (built only when missing or its files changed) -------------
step "checking the workspace image"
"$LABSPACE" image build jupyterlab

# 6. Database, built-in templates, first admin ----------------------------------------------
step "preparing the data directory"
init_out=$("$LABSPACE" init --admin "$ADMIN")
echo "$init_out" | grep -v '^admin password' >&2 || true

# 7. Start (or restart after an upgrade) the proxy and the hub --------------------------------
setting() {  # the value of one effective setting ("" when unset)
    "$LABSPACE" config show --json 2>/dev/null | python3 -c \
        'import json,sys; print(json.load(sys.stdin)["settings"].get(sys.argv[1]) or "")' "$1" 2>/dev/null
}
data_dir=$(setting data_dir); data_dir=${data_dir:-$DATA}
if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ] && [ "${LABSPACE_NO_SYSTEMD:-0}" != 1 ]; then
    for part in proxy hub; do
        unit=/etc/systemd/system/labspace-$part.service
        cat > "$unit.new" <<UNIT
[Unit]
Description=labspace $part
After=network-online.target docker.service
Wants=docker.service

[Service]
Environment=LABSPACE_CONFIG=$CONFIG
ExecStart=$LABSPACE $part
Restart=always
RestartSec=2
# Stopping labspace never stops workspaces: only this process is signalled.
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
        if ! cmp -s "$unit.new" "$unit"; then mv "$unit.new" "$unit"; changed=1; else rm "$unit.new"; fi
    done
    systemctl daemon-reload
    systemctl enable -q labspace-proxy labspace-hub
    if [ "$changed" = 1 ]; then
        systemctl restart labspace-proxy labspace-hub
    else
        systemctl start labspace-proxy labspace-hub
    fi
else
    # No systemd (a container or a minimal VM): run both in the background with pid files.
    run=$data_dir/run
    mkdir -p "$run" "$data_dir/logs"
    for part in proxy hub; do
        pid=$(cat "$run/$part.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            [ "$changed" = 1 ] || continue
            kill "$pid"; sleep 1
        fi
        nohup "$LABSPACE" "$part" >>"$data_dir/logs/$part.log" 2>&1 </dev/null &
        echo $! > "$run/$part.pid"
    done
fi

# 8. Wait until it answers, then tell the admin where to go --------------------------------
step "waiting for labspace to answer"
for _ in $(seq 1 60); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/hub/login" 2>/dev/null; then
        ready=1; break
    fi
    sleep 1
done
[ "${ready:-0}" = 1 ] || die "labspace did not answer on port $PORT; see $data_dir/logs/ or journalctl -u labspace-hub"

url=$(setting public_url); url=${url:-http://$(hostname -f 2>/dev/null || hostname):$PORT}
apps_domain=$(setting apps_domain)
echo
echo "labspace is running:  ${url%/}/"
if [ -n "$apps_domain" ]; then
    echo "workspaces open on:   their own hosts under $apps_domain"
else
    echo "workspaces open on:   labspace's own address (only their owners may open them)"
fi
case "$apps_domain" in
    ""|*localhost)
        echo "to serve the lab:     set public_url = \"https://lab.example.org\" and"
        echo "                      apps_domain = \"apps.lab.example.org\" (wildcard DNS and"
        echo "                      certificate) in $CONFIG, then run ./install.sh again" ;;
esac
password=$(echo "$init_out" | sed -n 's/^admin password: *\([^ ]*\).*/\1/p')
if [ -n "$password" ]; then
    echo "log in as:            $ADMIN"
    echo "one-time password:    $password   (shown once: change it after logging in)"
else
    echo "the admin account exists already (reset a password with: $LABSPACE user password NAME)"
fi
