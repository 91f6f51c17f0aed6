#!/bin/sh
# Makes sure the services the tests start are installed: nats-server (Debian package `nats-server`)
# and the PostgreSQL server binaries (Debian `postgresql`, in /usr/lib/postgresql/<ver>/bin), and
# the browser the web tests drive (Debian `chromium`, /usr/bin/chromium; test/web/).
# Run by `npm test` before the type-check. When both are present it only looks and exits 0
# (no apt-get, a few milliseconds). When one is missing it installs both as root, and fails
# with the command to run otherwise: the tests never skip a missing service.
set -eu

CMD="apt-get update && apt-get install -y nats-server postgresql chromium"

have_nats() { command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || [ -x /usr/bin/nats-server ]; }
have_pg() {
  for b in /usr/lib/postgresql/*/bin; do
    [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ] && [ -x "$b/postgres" ] && return 0
  done
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}
have_chromium() { [ -x /usr/bin/chromium ]; }
missing() {
  m=""
  have_nats || m="$m nats-server"
  have_pg || m="$m postgresql"
  have_chromium || m="$m chromium"
  echo "$m"
}

MISSING=$(missing)
[ -z "$MISSING" ] && exit 0

echo "services.sh: missing:$MISSING (the cluster tests start a real nats-server and PostgreSQL; the web tests drive Chromium)" >&2
if [ "$(id -u)" != 0 ]; then
  echo "services.sh: not root, so not installing; run as root: $CMD" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "services.sh: no apt-get on this machine; install nats-server, the PostgreSQL server binaries (initdb, pg_ctl, postgres) and Chromium (/usr/bin/chromium) yourself" >&2
  exit 1
fi
# Only what is missing: when just nats-server is absent, the installed PostgreSQL is left as it is.
PKGS=""
case "$MISSING" in *nats-server*) PKGS="$PKGS nats-server" ;; esac
case "$MISSING" in *postgresql*) PKGS="$PKGS postgresql" ;; esac
case "$MISSING" in *chromium*) PKGS="$PKGS chromium" ;; esac
echo "services.sh: running: apt-get update && apt-get install -y$PKGS" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PKGS

MISSING=$(missing)
if [ -n "$MISSING" ]; then
  echo "services.sh: still missing after apt-get:$MISSING" >&2
  exit 1
fi
echo "services.sh: installed:$PKGS" >&2
