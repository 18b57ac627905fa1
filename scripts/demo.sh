#!/usr/bin/env bash
# The `make demo` walk-through: convert the bundled StellaOps sample into PostgreSQL.
#
#   scripts/demo.sh run    write the sample as a mongodump directory (.demo/dump), find a
#                          PostgreSQL, convert every sample collection, print the summary
#   scripts/demo.sh stop   stop the local PostgreSQL that `run` started (make demo-stop)
#
# Target: $DATABASE_URL if set, else the libpq PG* variables if PGHOST is set, else a local
# throwaway PostgreSQL 15 on 127.0.0.1 (started by scripts/testbed.sh pg-start, state in .demo/)
# that is left running so you can look at the result; `run` reuses it the next time.
#
# Expects bin/convert and bin/samplegen (the make target builds them). The demo converts the
# four modules (--module all --create-schema --replace) into the schemas authority, scheduler,
# vuln and vex, then verifies the run against the sample.
#
# Environment: DEMO_AS_OF (default 2026-11-01T00:00:00Z, the sample's fixed as-of),
# PG_BINDIR (PostgreSQL server binaries, as for testbed.sh).
set -euo pipefail

readonly repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly state="$repo_root/.demo"
readonly as_of="${DEMO_AS_OF:-2026-11-01T00:00:00Z}"
readonly db_name=stellaops

die() {
	echo >&2
	echo "demo: ERROR: $*" >&2
	exit 1
}

log() {
	echo "demo: $*" >&2
}

usage() {
	echo "usage: $0 run | stop" >&2
	exit 2
}

# local_pg_up reports whether the demo's own PostgreSQL is running and answering.
local_pg_up() {
	[[ -f "$state/pg.port" && -f "$state/pg.bindir" ]] &&
		"$(cat "$state/pg.bindir")/pg_isready" -q -h 127.0.0.1 -p "$(cat "$state/pg.port")" -U postgres -d postgres -t 2
}

# start_local_pg starts (or reuses) the demo's PostgreSQL, creates the database and prints
# its URL.
start_local_pg() {
	local port bindir
	if local_pg_up; then
		log "reusing the demo PostgreSQL on 127.0.0.1:$(cat "$state/pg.port")"
	else
		# Leftovers of a cluster that is gone (reboot, /tmp cleaned) must not block a new one.
		bash "$repo_root/scripts/testbed.sh" pg-stop "$state" >/dev/null 2>&1 || true
		rm -f "$state/pg.dir" "$state/pg.port" "$state/pg.bindir"
		log "starting a throwaway PostgreSQL 15 (scripts/testbed.sh pg-start)"
		bash "$repo_root/scripts/testbed.sh" pg-start "$state" </dev/null ||
			die "could not start PostgreSQL (see above); or point the demo at one with DATABASE_URL=postgres://..."
	fi
	port="$(cat "$state/pg.port")"
	bindir="$(cat "$state/pg.bindir")"
	if [[ "$("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc \
		"SELECT 1 FROM pg_database WHERE datname = '$db_name'")" != 1 ]]; then
		"$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db_name" ||
			die "could not create database $db_name on 127.0.0.1:$port"
	fi
	echo "postgres://postgres@127.0.0.1:$port/$db_name?sslmode=disable"
}

cmd_run() {
	local convert="$repo_root/bin/convert" samplegen="$repo_root/bin/samplegen"
	[[ -x "$convert" && -x "$samplegen" ]] || die "bin/convert or bin/samplegen missing; run: make demo"
	mkdir -p "$state"

	log "writing the sample (as-of $as_of) to .demo/dump"
	rm -rf "$state/dump"
	"$samplegen" -out "$state/dump" -as-of "$as_of" >"$state/samplegen.txt" ||
		die "samplegen failed"
	tail -n 1 "$state/samplegen.txt" >&2

	local -a to=()
	local where local_pg=""
	if [[ -n "${DATABASE_URL:-}" ]]; then
		where="\$DATABASE_URL"
	elif [[ -n "${PGHOST:-}" ]]; then
		where="the PG* environment (PGHOST=$PGHOST)"
	else
		local url
		url="$(start_local_pg)"
		to=(--to "$url")
		where="$url"
		local_pg=1
	fi

	log "converting the four modules into $where (--module all --create-schema --replace)"
	echo
	# convert logs a line per collection; those go to a file so that the summary table it
	# prints on stdout stays readable. On failure the log's tail is what explains it.
	local rc=0
	"$convert" run --from "$state/dump" "${to[@]}" --as-of "$as_of" --replace --module all --create-schema \
		--report "$state/report.json" </dev/null 2>"$state/convert.log" || rc=$?
	echo
	if ((rc != 0)); then
		tail -n 30 "$state/convert.log" >&2
		die "convert run failed with exit code $rc (log above; all of it in .demo/convert.log)"
	fi
	local run_id
	run_id="$(sed -n 's/^  "run_id": "\(.*\)",$/\1/p' "$state/report.json")"
	run_id="${run_id%%$'\n'*}"
	[[ -n "$run_id" ]] || die "no run id in .demo/report.json"
	log "verifying run $run_id against the sample (re-extract, re-transform, compare checksums)"
	rc=0
	"$convert" verify --from "$state/dump" "${to[@]}" --run-id "$run_id" --report "$state/verify.json" \
		</dev/null >"$state/verify.txt" 2>>"$state/convert.log" || rc=$?
	head -n 1 "$state/verify.txt"
	if ((rc != 0)); then
		cat "$state/verify.txt" >&2
		die "convert verify failed with exit code $rc (see .demo/verify.txt and .demo/convert.log)"
	fi

	echo "Report: .demo/report.json   Verify: .demo/verify.json   Log: .demo/convert.log   Sample: .demo/dump (as-of $as_of)"
	if [[ -n "$local_pg" ]]; then
		local psql="psql"
		command -v psql >/dev/null 2>&1 || psql="$(cat "$state/pg.bindir")/psql"
		cat <<-EOF
			The demo PostgreSQL keeps running. Look at the result with:
			    $psql '${to[1]}'
			    e.g.  SELECT tenant_id, username, status FROM authority.users LIMIT 5;
			          SELECT * FROM convert.rejects;   -- what was refused, and why
			Stop it with:  make demo-stop
		EOF
	fi
}

cmd_stop() {
	if [[ ! -f "$state/pg.dir" ]]; then
		log "no demo PostgreSQL to stop"
		return 0
	fi
	bash "$repo_root/scripts/testbed.sh" pg-stop "$state"
	log "demo PostgreSQL stopped; its data is gone (the sample stays in .demo/dump)"
}

[[ $# -eq 1 ]] || usage
case "$1" in
run) cmd_run ;;
stop) cmd_stop ;;
*) usage ;;
esac
