// Command convert moves StellaOps control-plane data from MongoDB into PostgreSQL and proves
// that nothing was lost on the way. The command-line contract is ../shared/spec/cli.md.
//
// This package is the composition root: it turns flags into options, builds the source, the
// sink, the manifest store and the transforms, calls the library, and decides the exit code —
// in one place, exitCode.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
)

// toolVersion is the tool's version, recorded in every run.
const toolVersion = "0.1.0"

const usage = `convert moves StellaOps data from MongoDB to PostgreSQL and verifies it.

Usage:
  convert plan    --from SRC --to DSN (--module M[,M...] | --collection DB.COLL[=SCHEMA.TABLE]...) [--as-of T] [--json]
  convert run     --from SRC --to DSN (--module M | --collection DB.COLL[=SCHEMA.TABLE]...) [--as-of T]
                  [--workers N] [--batch-size N] [--run-id ID | --resume | --replace] [--max-rejects N|P%]
                  [--fix-strings] [--report FILE.json] [--manifest FILE[.zst]]
  convert status  --to DSN [--run-id ID] [--json]
  convert verify  --from SRC --to DSN --run-id ID [--deep] [--report FILE.json] [--json]
  convert archive --from SRC (--module M | --collection DB.COLL...) --out DIR [--gzip]
  convert job     --from SRC --to DSN --module M [run's result flags] [--workers N] [--rate DOCS/S] [--pause D] [--wait]
  convert job     --from SRC --to DSN --module M --join [--workers N] [--rate DOCS/S] [--wait-for-job D]

SRC is a mongodb:// URI (default $MONGO_URI), a mongodump directory or a mongodump archive.
DSN is a PostgreSQL URL or keyword DSN (default $DATABASE_URL, then the libpq PG* variables).
Exit codes: 0 ok, 1 failure, 2 usage or refusal, 3 verify found differences, 4 too many rejects,
5 another process holds the lock, 130/143 stopped by SIGINT/SIGTERM.
`

// heapLimit is the soft memory limit the tool sets for itself unless GOMEMLIMIT says otherwise:
// with several workers each holding two batches of up to 8 MiB of source BSON and their rows,
// the garbage collector would otherwise let the heap grow to twice the live data, past the
// 256 MiB the tool promises (bench.md).
const heapLimit = 192 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(heapLimit)
	}
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// parseFlags parses a command's flags: -h prints the flags and is no error (exit 0), anything
// else the flag package refuses is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return &usageError{msg: err.Error()}
	}
	return nil
}

// usageError is a command line the tool cannot act on (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

func realMain(args []string, stdout, stderr io.Writer) int {
	var caught atomic.Value // the signal that stopped us
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			caught.Store(s)
			cancel()
		case <-ctx.Done():
		}
	}()

	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "plan":
		err = cmdPlan(ctx, args[1:], stdout, stderr)
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(ctx, args[1:], stdout, stderr)
	case "verify":
		err = cmdVerify(ctx, args[1:], stdout, stderr)
	case "archive":
		err = cmdArchive(ctx, args[1:], stdout, stderr)
	case "job":
		err = cmdJob(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "convert", toolVersion)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usagef("unknown command %q", args[0])
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	for _, e := range problems(err) {
		fmt.Fprintf(stderr, "convert: %v\n", e)
	}
	return exitCode(err, caught.Load())
}

// exitCode is the one place where errors become exit codes (cli.md, Exit codes). A run may
// fail in several ways at once (joined errors: one range's corrupt input, another's crossed
// reject limit); the code is the first that applies in cli.md's order "2, then 1, then 4,
// then 3". A held lock (5) is found before anything runs and ranks after 2 only.
func exitCode(err error, sig any) int {
	code := codeOf(err)
	if code == 2 {
		return 2
	}
	switch sig {
	case syscall.SIGINT:
		return 130
	case syscall.SIGTERM:
		return 143
	}
	return code
}

// codePrecedence ranks exit codes: a higher one wins when several errors apply.
var codePrecedence = map[int]int{2: 5, 5: 4, 1: 3, 4: 2, 3: 1}

// codeOf is the exit code of one error: of the joined errors it holds, the one of highest
// precedence; of a chain of wrapped errors, the first typed one's; 1 for any other failure.
func codeOf(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		best := 0
		for _, e := range j.Unwrap() {
			if c := codeOf(e); codePrecedence[c] > codePrecedence[best] {
				best = c
			}
		}
		if best == 0 {
			best = 1
		}
		return best
	}
	switch err.(type) {
	case *usageError, *pipeline.UsageError, *load.SchemaMismatchError, *load.RLSError, *load.MigrationChecksumError, *pipeline.SourceChangedError:
		return 2
	case *load.LockHeldError:
		return 5
	case *pipeline.RejectLimitError:
		return 4
	case *differencesError:
		return 3
	}
	if inner := errors.Unwrap(err); inner != nil {
		return codeOf(inner)
	}
	return 1
}

// problems lists the errors a run ended with, one per printed line: joined errors apart.
func problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, problems(e)...)
		}
		return out
	}
	return []error{err}
}

// differencesError: verify found differences (exit code 3).
type differencesError struct{ n int }

func (e *differencesError) Error() string { return fmt.Sprintf("verify found %d differences", e.n) }

// newLogger logs to w: JSON lines with --json; on a terminal, where progress bars show the
// work, only warnings and errors (info lines would tear the bars); text lines otherwise.
func newLogger(w io.Writer, jsonLogs bool) *slog.Logger {
	if jsonLogs {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	opts := &slog.HandlerOptions{}
	if isTerminal(w) {
		opts.Level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
