# Developer and CI entry points. `make test` is what CI runs (via .ci/run):
# it starts throwaway PostgreSQL 15 and FerretDB servers, runs every test
# against them and always stops them again.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go

# bin/ferretdb is rebuilt only when its module changes: building FerretDB
# from a cold cache takes about a minute.
FERRETDB_SRC := $(wildcard tools/ferretdb/cmd/ferretdb/*.go) tools/ferretdb/go.mod tools/ferretdb/go.sum

TEST_FLAGS ?= -race -count=1 -timeout 60m
# Narrow with e.g. `make test PKGS=./internal/...`.
PKGS ?= ./...

.PHONY: build ferretdb test lint bench demo clean

build:
	$(GO) build -o bin/convert ./cmd/convert

ferretdb: bin/ferretdb

bin/ferretdb: $(FERRETDB_SRC)
	cd tools/ferretdb && $(GO) build -o ../../bin/ferretdb ./cmd/ferretdb

# The test bed lives in a fresh temp dir; the EXIT trap stops it whether the
# tests pass, fail or are interrupted, and the recipe exits with go test's
# status. Testbed chatter goes to stderr so that go test's summary stays the
# last thing on stdout. After a failure outside CI the servers' logs are kept.
test: build ferretdb
	@tb="$$(mktemp -d /tmp/convert-testbed.XXXXXX)"; \
	status=1; \
	trap 'bash scripts/testbed.sh stop "$$tb" >&2 || true; \
		if [[ $$status -ne 0 && "$${CI:-}" != true ]]; then \
			echo "make test: failed; server logs kept in $$tb" >&2; \
		else rm -rf "$$tb"; fi' EXIT; \
	bash scripts/testbed.sh start "$$tb" </dev/null; \
	source "$$tb/env"; \
	export CONVERT_TEST_FERRETDB_BIN="$(CURDIR)/bin/ferretdb"; \
	export CONVERT_BIN="$(CURDIR)/bin/convert"; \
	status=0; \
	$(GO) test $(TEST_FLAGS) $(PKGS) </dev/null || status=$$?; \
	exit $$status

# gofmt covers tools/ferretdb too; go vet ./... does not descend into it (it
# is a separate module), so it is vetted on its own.
lint:
	@unformatted="$$(find . -path ./bin -prune -o -path '*/testdata' -prune -o -name '*.go' -print0 | xargs -0 -r gofmt -l)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "gofmt -l: these files need gofmt -w:" >&2; echo "$$unformatted" >&2; exit 1; \
	fi
	$(GO) vet ./...
	cd tools/ferretdb && $(GO) vet ./...

# The benchmark of ../shared/spec/bench.md (cmd/bench): throwaway PostgreSQL 15 and
# FerretDB, figures as ratios against the limit and the naive path measured in the same run,
# JSON in bench/results/. Knobs are BENCH_* variables (see bench/README.md), e.g.
# `make bench BENCH_DOCS=20000`. By default the normalized shape converts 1 M documents and the
# JSONB-kept one 200 000, which keeps `make bench` within about 20 minutes on 2 cores;
# bench-scale runs 1 M and 5 M documents per shape (JSONB capped at 20 GB of source).
BENCH_DOCS ?=
bench: build ferretdb
	$(GO) build -o bin/bench ./cmd/bench
	bin/bench -docs '$(BENCH_DOCS)'

.PHONY: bench-scale
bench-scale: build ferretdb
	$(GO) build -o bin/bench ./cmd/bench
	bin/bench -docs 1000000,5000000 -timeout "$${BENCH_TIMEOUT:-10h}"

# Converts the bundled sample (cmd/samplegen, fixed as-of) into a local throwaway PostgreSQL 15
# that stays up for a look; DATABASE_URL and PG* are ignored. `make demo DEMO_DSN=...` names
# another target, refused when its tables hold rows unless DEMO_REPLACE=yes; see scripts/demo.sh.
demo: build
	$(GO) build -o bin/samplegen ./cmd/samplegen
	@bash scripts/demo.sh run

.PHONY: demo-stop
demo-stop:
	@bash scripts/demo.sh stop

clean:
	rm -rf bin
