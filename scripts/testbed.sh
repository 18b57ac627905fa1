#!/usr/bin/env bash
# Throwaway PostgreSQL 15 + FerretDB servers for the test suite.
#
#   scripts/testbed.sh start DIR   start both, write DIR/env (source it before go test)
#   scripts/testbed.sh stop DIR    stop both; safe to call when nothing is running
#   scripts/testbed.sh pg-start DIR / pg-stop DIR   PostgreSQL only (scripts/demo.sh);
#                                  pg-start writes DIR/pg.port and DIR/pg.bindir
#
# State under DIR:
#   env             export lines for CONVERT_TEST_PG_URL and CONVERT_TEST_MONGO_URI
#   pg.dir          path of the PostgreSQL cluster directory (see below)
#   pg.port, ferretdb.port, ferretdb.pid
#   postgres.log    copied here from the cluster directory on stop
#   ferretdb.log, ferretdb/   FerretDB's log and SQLite files
#
# The PostgreSQL cluster lives in its own mktemp directory under /tmp rather
# than under DIR: when we run as root, initdb/postgres must run as the
# `postgres` user, which cannot traverse a root-owned 0700 DIR (mktemp -d, or
# anything under /root); and a short path keeps the unix socket path under
# the 107-byte limit.
#
# Environment overrides:
#   PG_BINDIR       directory holding initdb/pg_ctl (default: PostgreSQL 15's)
#   FERRETDB_BIN    FerretDB binary (default: CONVERT_TEST_FERRETDB_BIN, then <repo>/bin/ferretdb)
#   TESTBED_TIMEOUT seconds to wait for each server to become ready (default 60)
set -euo pipefail

readonly repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly timeout="${TESTBED_TIMEOUT:-60}"

die() {
	echo "testbed: ERROR: $*" >&2
	exit 1
}

log() {
	echo "testbed: $*" >&2
}

usage() {
	echo "usage: $0 start DIR | stop DIR | pg-start DIR | pg-stop DIR" >&2
	exit 2
}

is_root() {
	[[ "$(id -u)" -eq 0 ]]
}

# as_pg runs a command as the user that owns the cluster: postgres when we
# are root (initdb and postgres refuse to run as root), ourselves otherwise.
as_pg() {
	if is_root; then
		# /usr/sbin is not on every root PATH (e.g. under sudo or cron).
		"$(command -v runuser || echo /usr/sbin/runuser)" -u postgres -- "$@"
	else
		"$@"
	fi
}

find_pg_bindir() {
	local d
	for d in "${PG_BINDIR:-}" /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
		if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			echo "$d"
			return 0
		fi
	done
	die "PostgreSQL server binaries not found (looked in \$PG_BINDIR, /usr/lib/postgresql/15/bin, pg_config --bindir); install them with: apt-get update && apt-get install -y postgresql-15"
}

find_ferretdb_bin() {
	local b="${FERRETDB_BIN:-${CONVERT_TEST_FERRETDB_BIN:-$repo_root/bin/ferretdb}}"
	[[ -x "$b" ]] || die "FerretDB binary $b not found or not executable; build it with: make ferretdb"
	echo "$b"
}

# port_in_use reports whether something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port prints a port that nothing listens on. It picks below Linux's
# ephemeral range (32768+) so that outgoing connections cannot grab it
# between the check and the server's bind; callers still retry on a lost race.
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((15000 + RANDOM % 17000))
		if ! port_in_use "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "could not find a free TCP port on 127.0.0.1"
}

# absdir prints the absolute path of directory $1, creating it.
absdir() {
	mkdir -p "$1"
	(cd "$1" && pwd)
}

start_pg() {
	local dir="$1" bindir pgdir port attempt
	bindir="$(find_pg_bindir)"
	if is_root; then
		id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user to run PostgreSQL as; create it (useradd --system postgres) or install postgresql-15"
	fi

	pgdir="$(mktemp -d /tmp/convert-pg.XXXXXX)"
	echo "$pgdir" >"$dir/pg.dir"
	if is_root; then
		chown postgres: "$pgdir"
	fi

	# cd: runuser keeps our cwd, and postgres may not be allowed to read it.
	if ! (cd "$pgdir" && as_pg "$bindir/initdb" -D "$pgdir/data" -U postgres --auth=trust \
		-E UTF8 --locale=C --no-sync >"$pgdir/initdb.log" 2>&1); then
		cat "$pgdir/initdb.log" >&2 || true
		die "initdb failed in $pgdir/data (log above)"
	fi

	echo "include 'testbed.conf'" >>"$pgdir/data/postgresql.conf"

	for attempt in 1 2 3; do
		port="$(free_port)"
		# Settings go into a file that postgresql.conf includes, rather than
		# pg_ctl -o, so that a restart of this cluster keeps them. Durability
		# is traded for speed: the data is thrown away after the run anyway.
		cat >"$pgdir/data/testbed.conf" <<-EOF
			listen_addresses = '127.0.0.1'
			port = $port
			unix_socket_directories = '$pgdir'
			max_connections = 200
			fsync = off
			synchronous_commit = off
			full_page_writes = off
			shared_buffers = '128MB'
			log_min_messages = warning
		EOF
		if is_root; then
			chown postgres: "$pgdir/data/testbed.conf"
		fi

		if (cd "$pgdir" && as_pg "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" \
			-w -t "$timeout" start >"$pgdir/pg_ctl.log" 2>&1); then
			break
		fi
		if grep -qiE 'could not (bind|create listen)|address already in use' "$pgdir/postgres.log" 2>/dev/null && [[ $attempt -lt 3 ]]; then
			log "PostgreSQL lost a race for port $port; retrying on another port"
			continue
		fi
		cat "$pgdir/pg_ctl.log" >&2 || true
		tail -n 50 "$pgdir/postgres.log" >&2 || true
		die "PostgreSQL did not start within ${timeout}s (cluster in $pgdir; logs above)"
	done
	echo "$port" >"$dir/pg.port"

	# pg_ctl -w already waited for "ready"; this proves TCP on 127.0.0.1 works too.
	local deadline=$((SECONDS + timeout))
	until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; do
		if ((SECONDS >= deadline)); then
			tail -n 50 "$pgdir/postgres.log" >&2 || true
			die "PostgreSQL on 127.0.0.1:$port is not accepting connections after ${timeout}s"
		fi
		sleep 0.2
	done
	log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$port (cluster in $pgdir)"
}

start_ferretdb() {
	local dir="$1" bin port pid attempt deadline
	bin="$(find_ferretdb_bin)"
	mkdir -p "$dir/ferretdb"

	for attempt in 1 2 3; do
		port="$(free_port)"
		# setsid: Ctrl-C on `make test` must not kill the server before the
		# trap that stops it cleanly runs. All fds are redirected so that the
		# server does not hold the caller's pipes open after we return.
		setsid "$bin" -listen "127.0.0.1:$port" -dir "$dir/ferretdb" \
			</dev/null >>"$dir/ferretdb.log" 2>&1 &
		pid=$!
		echo "$pid" >"$dir/ferretdb.pid"
		echo "$port" >"$dir/ferretdb.port"

		deadline=$((SECONDS + timeout))
		while :; do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			if port_in_use "$port" && "$bin" -ping "mongodb://127.0.0.1:$port/" 2>/dev/null; then
				log "FerretDB ready on 127.0.0.1:$port (pid $pid, data in $dir/ferretdb)"
				return 0
			fi
			if ((SECONDS >= deadline)); then
				tail -n 50 "$dir/ferretdb.log" >&2 || true
				die "FerretDB on 127.0.0.1:$port did not answer ping within ${timeout}s (log above)"
			fi
			sleep 0.2
		done

		rm -f "$dir/ferretdb.pid"
		if grep -q 'address already in use' "$dir/ferretdb.log" && [[ $attempt -lt 3 ]]; then
			log "FerretDB lost a race for port $port; retrying on another port"
			continue
		fi
		tail -n 50 "$dir/ferretdb.log" >&2 || true
		die "FerretDB exited during startup (log above)"
	done
}

stop_pg() {
	local dir="$1" pgdir bindir
	[[ -f "$dir/pg.dir" ]] || return 0
	pgdir="$(cat "$dir/pg.dir")"
	if [[ -f "$pgdir/data/postmaster.pid" ]]; then
		bindir="$(find_pg_bindir)"
		if ! (cd "$pgdir" && as_pg "$bindir/pg_ctl" -D "$pgdir/data" -m fast -w -t 30 stop >/dev/null 2>&1); then
			log "PostgreSQL did not stop in 30s with -m fast; using -m immediate"
			(cd "$pgdir" && as_pg "$bindir/pg_ctl" -D "$pgdir/data" -m immediate -w -t 30 stop >&2) ||
				die "could not stop PostgreSQL in $pgdir"
		fi
	fi
	cp "$pgdir/postgres.log" "$dir/postgres.log" 2>/dev/null || true
	rm -rf "$pgdir"
	rm -f "$dir/pg.dir" "$dir/pg.port"
}

stop_ferretdb() {
	local dir="$1" pid i
	[[ -f "$dir/ferretdb.pid" ]] || return 0
	pid="$(cat "$dir/ferretdb.pid")"
	# Only signal the pid if it is still our FerretDB: after a reboot or a
	# crash the number may belong to an unrelated process.
	if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-dir $dir/ferretdb"; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "FerretDB (pid $pid) ignored SIGTERM for 10s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$dir/ferretdb.pid" "$dir/ferretdb.port"
}

cleanup_failed_start() {
	local rc=$?
	if ((rc != 0)); then
		log "start failed; stopping what did start"
		stop_ferretdb "$1" || true
		stop_pg "$1" || true
	fi
	exit "$rc"
}

cmd_start() {
	local dir
	dir="$(absdir "$1")"
	[[ ! -f "$dir/pg.dir" && ! -f "$dir/ferretdb.pid" ]] ||
		die "$dir already holds a test bed; run: $0 stop $dir"
	rm -f "$dir/env"
	# Fail on a missing binary before starting anything.
	find_pg_bindir >/dev/null
	find_ferretdb_bin >/dev/null

	# Whatever part did start must not outlive a failed start. The trap runs
	# after this function returned, so it gets dir baked in, not by name.
	trap "cleanup_failed_start $(printf %q "$dir")" EXIT

	start_pg "$dir"
	start_ferretdb "$dir"

	cat >"$dir/env.tmp" <<-EOF
		export CONVERT_TEST_PG_URL='postgres://postgres@127.0.0.1:$(cat "$dir/pg.port")/postgres?sslmode=disable'
		export CONVERT_TEST_MONGO_URI='mongodb://127.0.0.1:$(cat "$dir/ferretdb.port")/'
	EOF
	mv "$dir/env.tmp" "$dir/env"
	log "started; run: source $dir/env"
}

cmd_stop() {
	local dir="$1" rc=0
	[[ -d "$dir" ]] || return 0
	dir="$(cd "$dir" && pwd)"
	stop_ferretdb "$dir" || rc=1
	stop_pg "$dir" || rc=1
	rm -f "$dir/env"
	((rc == 0)) || die "stopping the test bed in $dir failed"
	log "stopped"
}

# PostgreSQL alone, for scripts/demo.sh: same cluster setup, no FerretDB.
cmd_pg_start() {
	local dir
	dir="$(absdir "$1")"
	[[ ! -f "$dir/pg.dir" ]] || die "$dir already holds a PostgreSQL cluster; run: $0 pg-stop $dir"
	find_pg_bindir >/dev/null
	trap "cleanup_failed_start $(printf %q "$dir")" EXIT
	start_pg "$dir"
	find_pg_bindir >"$dir/pg.bindir"
}

cmd_pg_stop() {
	local dir="$1"
	[[ -d "$dir" ]] || return 0
	dir="$(cd "$dir" && pwd)"
	stop_pg "$dir" || die "stopping PostgreSQL of $dir failed"
	rm -f "$dir/pg.bindir"
}

[[ $# -eq 2 && -n "$2" ]] || usage
case "$1" in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
pg-start) cmd_pg_start "$2" ;;
pg-stop) cmd_pg_stop "$2" ;;
*) usage ;;
esac
