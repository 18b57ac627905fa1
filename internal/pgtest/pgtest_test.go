package pgtest

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^t_[a-z0-9_]+_[0-9a-f]{8}$`)
	for _, name := range []string{
		"TestX",
		"TestCopy/nested_subtest/with spaces & symbols",
		strings.Repeat("VeryLongTestName", 10),
		"Test#01/ünïcode",
	} {
		got := databaseName(name)
		if !valid.MatchString(got) || len(got) > 63 || strings.Contains(got, "__") {
			t.Errorf("databaseName(%q) = %q: not a tidy identifier of at most 63 bytes", name, got)
		}
	}
	if a, b := databaseName("TestX"), databaseName("TestX"); a == b {
		t.Errorf("databaseName is not unique: got %q twice", a)
	}
}

func TestDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	url := Database(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer conn.Close(context.Background())

	var db string
	var one int
	if err := conn.QueryRow(ctx, "SELECT current_database(), 1").Scan(&db, &one); err != nil {
		t.Fatalf("SELECT 1: %v", err)
	}
	if !strings.HasPrefix(db, "t_testdatabase_") || one != 1 {
		t.Errorf("got database %q and %d, want a fresh t_testdatabase_* database and 1", db, one)
	}
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
		t.Fatalf("count tables: %v", err)
	}
	if tables != 0 {
		t.Errorf("fresh database has %d tables in public", tables)
	}
}

// TestDatabaseDropped checks that cleanup drops the database even while a
// connection to it is still open.
func TestDatabaseDropped(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if os.Getenv(EnvURL) == "" {
		unavailable(t, EnvURL+" is not set") // before the subtest skips and leaves us nothing
	}

	var url string
	var leftOpen *pgx.Conn
	t.Run("inner", func(t *testing.T) {
		url = Database(t)
		var err error
		leftOpen, err = pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
	})
	defer leftOpen.Close(context.Background())

	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		conn.Close(ctx)
		t.Fatalf("database %s still exists after its test ended", url)
	}
	if !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("connect to dropped database: got %v, want a does-not-exist error", err)
	}
}

func TestStartServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	srv := StartServer(t)
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, srv.URL())
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatalf("create table: %v", err)
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exec("INSERT INTO kept VALUES (43)"); err != nil {
		t.Fatalf("use server after Restart: %v", err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start after Kill (crash recovery): %v", err)
	}

	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatalf("connect after Start: %v", err)
	}
	defer conn.Close(context.Background())
	var sum int
	if err := conn.QueryRow(ctx, "SELECT sum(v) FROM kept").Scan(&sum); err != nil {
		t.Fatalf("read back rows: %v", err)
	}
	if sum != 85 {
		t.Errorf("sum(v) = %d after restarts, want 85", sum)
	}
}
