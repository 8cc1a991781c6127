#!/usr/bin/env bash
# Everything the test suite needs, installed or started only when missing (idempotent):
# Debian packages (docker-registry and openssl for the swarm tests' registry; ssh and rsync for
# the SSH tests; slapd for the LDAP tests; poppler-utils and zbar-tools to read back the
# workshop credential sheet's PDF and QR codes), the .venv with labspace[test], a PostgreSQL
# role/db labspace_test, a running Docker engine and the labspace/jupyterlab image (rebuilt
# only when its files change), and the test identity provider's npm packages.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
log() { echo "ensure-test-deps: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        log "needs root for: $*"
        return 1
    fi
}

# -- Debian packages ------------------------------------------------------------------------
missing=()
for pkg in python3 python3-venv debootstrap postgresql chromium chromium-driver curl \
        docker-registry openssl openssh-client rsync slapd poppler-utils zbar-tools; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# -- the venv -------------------------------------------------------------------------------
stamp=.venv/.labspace-pyproject-sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
   || ! .venv/bin/python -c 'import labspace, pytest, ruff, mypy' >/dev/null 2>&1; then
    log "pip install -e '.[test]'"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e "$ROOT[test]"
    echo "$want" > "$stamp"
fi

# -- the single sign-on tests' identity provider (oidc-provider on Node.js) ------------------
if ! command -v npm >/dev/null 2>&1; then
    log "installing nodejs and npm"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
provider=tests/identity/oidc_provider
stamp=$provider/node_modules/.labspace-lock-sha256
want=$(sha256sum $provider/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci in $provider"
    (cd $provider && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
fi

# -- PostgreSQL -----------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
    cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR == 1 { print $1 " " $2 }')
    if [ -z "$cluster" ]; then
        log "no PostgreSQL cluster; creating one"
        version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
        as_root pg_createcluster "$version" main >/dev/null
        cluster="$version main"
    fi
    log "starting PostgreSQL $cluster"
    # shellcheck disable=SC2086
    as_root pg_ctlcluster $cluster start || as_root service postgresql start
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 && break
        sleep 1
    done
fi
psql_admin() { as_root runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAX "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'labspace_test'")" != 1 ]; then
    log "creating PostgreSQL role labspace_test"
    psql_admin -c "CREATE ROLE labspace_test LOGIN PASSWORD 'labspace_test' CREATEDB"
fi
# The end-to-end test makes a database of its own: a role from an older run may lack this.
psql_admin -c "ALTER ROLE labspace_test CREATEDB" >/dev/null
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'labspace_test'")" != 1 ]; then
    log "creating PostgreSQL database labspace_test"
    psql_admin -c "CREATE DATABASE labspace_test OWNER labspace_test"
fi

# -- Docker and the workspace image ---------------------------------------------------------
bash scripts/ensure-docker.sh
.venv/bin/python -m labspace.images.build jupyterlab -q
