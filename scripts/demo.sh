#!/usr/bin/env bash
# The `make demo` walk-through: convert the bundled StellaOps sample into PostgreSQL.
#
#   scripts/demo.sh run    write the sample as a mongodump directory (.demo/dump), find a
#                          PostgreSQL, convert every sample collection, print the summary
#   scripts/demo.sh stop   stop the local PostgreSQL that `run` started (make demo-stop)
#
# Target: a local throwaway PostgreSQL 15 on 127.0.0.1 (started by scripts/testbed.sh pg-start,
# state in .demo/) that is left running so you can look at the result; `run` reuses it the next
# time. The demo never takes its target from DATABASE_URL or the PG* variables: a shell set up
# for real work must not have the demo write into a real database. Only DEMO_DSN names another
# target, and even then the demo refuses tables that already hold rows (convert's own refusal,
# exit 2) unless DEMO_REPLACE=yes says to truncate them.
#
# Expects bin/convert and bin/samplegen (the make target builds them). The demo converts the
# four modules (--module all --create-schema) into the schemas authority, scheduler, vuln and
# vex (--replace on its own server), then verifies the run against the sample.
#
# Environment: DEMO_DSN (an explicit target), DEMO_REPLACE=yes (truncate a populated DEMO_DSN
# target), DEMO_AS_OF (default 2026-11-01T00:00:00Z, the sample's fixed as-of), DEMO_STATE
# (default .demo), DEMO_CONVERT_BIN and DEMO_SAMPLEGEN_BIN (default bin/convert, bin/samplegen),
# PG_BINDIR (PostgreSQL server binaries, as for testbed.sh).
set -euo pipefail

readonly repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly state="${DEMO_STATE:-$repo_root/.demo}"
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
	local convert="${DEMO_CONVERT_BIN:-$repo_root/bin/convert}" samplegen="${DEMO_SAMPLEGEN_BIN:-$repo_root/bin/samplegen}"
	[[ -x "$convert" && -x "$samplegen" ]] || die "bin/convert or bin/samplegen missing; run: make demo"
	mkdir -p "$state"

	log "writing the sample (as-of $as_of) to .demo/dump"
	rm -rf "$state/dump"
	"$samplegen" -out "$state/dump" -as-of "$as_of" >"$state/samplegen.txt" ||
		die "samplegen failed"
	tail -n 1 "$state/samplegen.txt" >&2

	local -a to=() replace=()
	local where local_pg=""
	if [[ -n "${DEMO_DSN:-}" ]]; then
		to=(--to "$DEMO_DSN")
		where="DEMO_DSN"
		if [[ "${DEMO_REPLACE:-}" == yes ]]; then
			replace=(--replace)
		fi
	else
		if [[ -n "${DATABASE_URL:-}${PGHOST:-}${PGDATABASE:-}" ]]; then
			log "DATABASE_URL/PG* are set but ignored: the demo uses its own throwaway PostgreSQL (name a target with DEMO_DSN=...)"
		fi
		local url
		url="$(start_local_pg)"
		to=(--to "$url")
		replace=(--replace)
		where="$url"
		local_pg=1
	fi
	# Nothing of the caller's libpq environment reaches convert: the target is exactly --to.
	local -a clean_env=(env -u DATABASE_URL)
	local v
	for v in $(compgen -e); do
		[[ "$v" == PG* ]] && clean_env+=(-u "$v")
	done

	log "converting the four modules into $where (--module all --create-schema ${replace[*]})"
	echo
	# convert logs a line per collection; those go to a file so that the summary table it
	# prints on stdout stays readable. On failure the log's tail is what explains it.
	local rc=0
	"${clean_env[@]}" "$convert" run --from "$state/dump" "${to[@]}" --as-of "$as_of" "${replace[@]}" --module all --create-schema \
		--report "$state/report.json" </dev/null 2>"$state/convert.log" || rc=$?
	echo
	if ((rc != 0)); then
		tail -n 30 "$state/convert.log" >&2
		if ((rc == 2)) && [[ -n "${DEMO_DSN:-}" ]]; then
			die "the DEMO_DSN target was refused (exit 2, above); to truncate its tables for the demo, add DEMO_REPLACE=yes"
		fi
		die "convert run failed with exit code $rc (log above; all of it in .demo/convert.log)"
	fi
	local run_id
	run_id="$(sed -n 's/^  "run_id": "\(.*\)",$/\1/p' "$state/report.json")"
	run_id="${run_id%%$'\n'*}"
	[[ -n "$run_id" ]] || die "no run id in .demo/report.json"
	log "verifying run $run_id against the sample (re-extract, re-transform, compare checksums)"
	rc=0
	"${clean_env[@]}" "$convert" verify --from "$state/dump" "${to[@]}" --run-id "$run_id" --report "$state/verify.json" \
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
