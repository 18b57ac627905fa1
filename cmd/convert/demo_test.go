package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/pgtest"
)

// runDemo runs scripts/demo.sh run with its state in dir and the given environment added.
func runDemo(t *testing.T, dir, samplegen string, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "scripts", "demo.sh"), "run")
	cmd.Env = append(os.Environ(), append([]string{"DEMO_STATE=" + dir, "DEMO_CONVERT_BIN=" + binPath, "DEMO_SAMPLEGEN_BIN=" + samplegen}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("demo: %v\n%s", err, out)
	}
	return 0, string(out)
}

// TestDemoNeverWritesIntoTheEnvironmentsDatabase: with DATABASE_URL and PGHOST pointing at a
// database that holds data, `make demo` converts into its own throwaway server and leaves that
// database as it was; a target named with DEMO_DSN is used, but once its tables hold rows it is
// refused unless DEMO_REPLACE=yes.
func TestDemoNeverWritesIntoTheEnvironmentsDatabase(t *testing.T) {
	samplegen := filepath.Join(t.TempDir(), "samplegen")
	if out, err := exec.Command("go", "build", "-o", samplegen, "../samplegen").CombinedOutput(); err != nil {
		t.Fatalf("build samplegen: %v\n%s", err, out)
	}
	state := t.TempDir()
	t.Cleanup(func() {
		cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "demo.sh"), "stop")
		cmd.Env = append(os.Environ(), "DEMO_STATE="+state)
		_ = cmd.Run()
	})

	real := pgtest.Database(t)
	conn := pgConn(t, real)
	if _, err := conn.Exec(t.Context(), `CREATE SCHEMA authority; CREATE TABLE authority.users (id int); INSERT INTO authority.users SELECT generate_series(1, 20002)`); err != nil {
		t.Fatal(err)
	}
	code, out := runDemo(t, state, samplegen, "DATABASE_URL="+real, "PGHOST=127.0.0.1", "PGDATABASE=postgres")
	if code != 0 {
		t.Fatalf("demo with DATABASE_URL set: exit %d\n%s", code, out)
	}
	var users int
	var convertSchema bool
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM authority.users), to_regnamespace('convert') IS NOT NULL`).Scan(&users, &convertSchema); err != nil {
		t.Fatal(err)
	}
	if users != 20002 || convertSchema {
		t.Fatalf("the demo wrote into $DATABASE_URL: %d users (was 20002), convert schema %v\n%s", users, convertSchema, out)
	}
	if !strings.Contains(out, "verify") {
		t.Errorf("demo output names no verify:\n%s", out)
	}

	named := pgtest.Database(t)
	if code, out := runDemo(t, state, samplegen, "DEMO_DSN="+named); code != 0 {
		t.Fatalf("demo into an empty DEMO_DSN: exit %d\n%s", code, out)
	}
	code, out = runDemo(t, state, samplegen, "DEMO_DSN="+named)
	if code == 0 || !strings.Contains(out, "DEMO_REPLACE=yes") {
		t.Fatalf("demo into a populated DEMO_DSN without DEMO_REPLACE: exit %d\n%s", code, out)
	}
	if code, out := runDemo(t, state, samplegen, "DEMO_DSN="+named, "DEMO_REPLACE=yes"); code != 0 {
		t.Fatalf("demo into a populated DEMO_DSN with DEMO_REPLACE=yes: exit %d\n%s", code, out)
	}
}
