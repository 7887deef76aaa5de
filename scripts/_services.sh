# What the tests need besides Python: Debian's chromium for browser tests, and a throwaway
# PostgreSQL server. Both are installed through apt when missing and we are root (CI).

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages ($*); install them (needs root): apt-get install $*" >&2
    return 1
  fi
  if [ ! -f /tmp/.harbour-apt-updated ]; then
    apt-get update -qq && touch /tmp/.harbour-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || { echo "Installing chromium ..."; apt_install chromium; }
}

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return; }
  done
  return 1
}

ensure_postgresql() {
  # Both passes need the server binaries: the fault tests start clusters of their own.
  pg_bin >/dev/null || { echo "Installing postgresql ..."; apt_install postgresql; }
  HARBOUR_TEST_PG_BIN="$(pg_bin)"
  export HARBOUR_TEST_PG_BIN
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_postgres() {
  # A cluster of this run's own, in a new folder on a free port: two runs on one machine
  # (a developer's and a clean-clone CI check) never share or delete each other's server.
  local bin
  ensure_postgresql
  bin="$HARBOUR_TEST_PG_BIN"
  PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/harbour-test-postgres.XXXXXX")"
  PG_PORT="${HARBOUR_TEST_PG_PORT:-$(free_port)}"
  # PostgreSQL refuses to run as root: run it as the postgres system user when we are root.
  local as=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_DIR"
    as=(runuser -u postgres --)
  fi
  PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m fast stop)
  trap stop_postgres EXIT  # also when the run is interrupted
  "${as[@]}" "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/harbour"
  export PG_URL
}

stop_postgres() {
  [ -n "${PG_DIR:-}" ] || return 0
  "${PG_STOP[@]}" >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=""
}
