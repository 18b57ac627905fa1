// Package pgtest gives tests PostgreSQL databases to work against.
//
// Most tests want [Database]: a fresh database on the shared server that
// `make test` starts (scripts/testbed.sh) and announces through
// CONVERT_TEST_PG_URL. Tests that stop, restart or crash the server need a
// cluster of their own and use [StartServer] instead, which is slower
// (initdb takes about a second).
//
// When the shared server is not configured, tests are skipped on a developer
// machine and fail under CI=true, so that a misconfigured CI cannot pass by
// skipping everything.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the URL of the shared
// server's maintenance database (as written by scripts/testbed.sh).
const EnvURL = "CONVERT_TEST_PG_URL"

// EnvBinDir optionally names a directory holding initdb and pg_ctl for
// [StartServer]; by default PostgreSQL 15's Debian location is used.
const EnvBinDir = "CONVERT_TEST_PG_BINDIR"

const howToRun = "run the tests with `make test`, which starts throwaway PostgreSQL and FerretDB servers " +
	"(scripts/testbed.sh start DIR; source DIR/env) and sets " + EnvURL

// opTimeout bounds every single server operation so that a wedged server
// fails the test instead of hanging until the global go test timeout.
const opTimeout = 90 * time.Second

// unavailable skips the test, or fails it under CI where a skip would hide
// that nothing was tested.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("pgtest: %s; under CI=true this is an error: %s", why, howToRun)
	}
	t.Skipf("pgtest: %s; %s", why, howToRun)
}

// Database creates a uniquely named, empty database on the shared server and
// returns a URL for it. The database is dropped (WITH (FORCE), so leftover
// connections do not block it) when the test ends.
func Database(t testing.TB) string {
	t.Helper()

	base := os.Getenv(EnvURL)
	if base == "" {
		unavailable(t, EnvURL+" is not set")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", EnvURL, err)
	}

	name := databaseName(t.Name())
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	// template0 so that nothing another test left in template1 leaks in, and
	// because CREATE DATABASE fails while anyone is connected to its template.
	if err := execSQL(ctx, base, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}

	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := execSQL(ctx, base, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// databaseName derives a valid, unique PostgreSQL identifier (at most 63
// bytes) from a test name, keeping enough of the name to find the test in
// server logs.
func databaseName(testName string) string {
	const maxPrefix = 40
	var b strings.Builder
	b.WriteString("t_")
	lastUnderscore := true
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= maxPrefix {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			lastUnderscore = false
		case !lastUnderscore:
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	if !lastUnderscore {
		b.WriteByte('_')
	}
	b.WriteString(randomHex(4))
	return b.String()
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails on Linux.
	return hex.EncodeToString(buf)
}

// execSQL runs one statement on a short-lived connection; CREATE/DROP
// DATABASE cannot run inside a transaction, and a pool would outlive its use.
func execSQL(ctx context.Context, connURL, sql string) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("exec %q: %w", sql, err)
	}
	return nil
}

// Server is a private PostgreSQL cluster owned by one test. Its methods may
// be called from any goroutine; they do not call t.Fatal, so that tests can
// restart the server while other goroutines use it.
type Server struct {
	bindir string
	dir    string // owned by the postgres OS user when the tests run as root
	port   int
	asRoot bool

	watchdog *exec.Cmd

	// mu serializes pg_ctl invocations: concurrent start/stop of one data
	// directory would fight over postmaster.pid.
	mu sync.Mutex
}

// StartServer initializes and starts a PostgreSQL cluster listening on
// 127.0.0.1 on a free port, with trust authentication for superuser
// postgres. It is stopped and deleted when the test ends.
//
// When running as root, initdb and pg_ctl run as the postgres OS user via
// runuser, because PostgreSQL refuses to run as root.
func StartServer(t testing.TB) *Server {
	t.Helper()

	bindir, err := findBinDir()
	if err != nil {
		unavailable(t, err.Error())
	}

	// Not t.TempDir: its parent is a root-owned 0700 directory that the
	// postgres user could not enter.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: create cluster directory: %v", err)
	}
	s := &Server{bindir: bindir, dir: dir, asRoot: os.Geteuid() == 0}
	t.Cleanup(func() {
		if err := s.cleanup(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	if err := s.init(ctx); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.startWatchdog(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	// A port found free can be taken before postgres binds it; try another.
	const attempts = 3
	for i := 1; ; i++ {
		if err := s.configure(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		err := s.Start()
		if err == nil {
			break
		}
		if i == attempts || !s.lostPortRace() {
			t.Fatalf("pgtest: %v", err)
		}
		t.Logf("pgtest: port %d was taken before PostgreSQL bound it; retrying", s.port)
	}
	return s
}

// URL returns the URL of the cluster's postgres database.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start starts the stopped server on the same port with the same data.
func (s *Server) Start() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pgCtl(ctx, "start", "-l", s.logPath()); err != nil {
		return fmt.Errorf("start PostgreSQL on port %d: %w\n%s", s.port, err, s.logTail())
	}
	return nil
}

// Stop shuts the server down the way an operator would (pg_ctl -m fast):
// clients are disconnected and open transactions rolled back.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pgCtl(ctx, "stop", "-m", "fast"); err != nil {
		return fmt.Errorf("stop PostgreSQL on port %d: %w", s.port, err)
	}
	return nil
}

// Kill stops the server as if it crashed (pg_ctl -m immediate): no
// shutdown checkpoint, crash recovery on the next start.
func (s *Server) Kill() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pgCtl(ctx, "stop", "-m", "immediate"); err != nil {
		return fmt.Errorf("kill PostgreSQL on port %d: %w", s.port, err)
	}
	return nil
}

// Restart stops the server with -m fast and starts it again on the same
// port; it returns once the server accepts connections.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// -l again: without it the new postmaster would log to pg_ctl's stdout.
	if err := s.pgCtl(ctx, "restart", "-m", "fast", "-l", s.logPath()); err != nil {
		return fmt.Errorf("restart PostgreSQL on port %d: %w\n%s", s.port, err, s.logTail())
	}
	return nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

func (s *Server) init(ctx context.Context) error {
	if s.asRoot {
		if err := chownToPostgres(s.dir); err != nil {
			return err
		}
	}
	if err := s.run(ctx, "initdb", "-D", s.dataDir(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("initdb in %s: %w", s.dataDir(), err)
	}
	// An include keeps our settings across pg_ctl restart (unlike pg_ctl -o)
	// and lets configure rewrite the port without touching postgresql.conf.
	f, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	_, werr := f.WriteString("\ninclude 'pgtest.conf'\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("append include to postgresql.conf: %w", err)
	}
	return nil
}

// configure picks a free port and writes the cluster's settings. Durability
// is traded for speed: the cluster is thrown away with the test.
func (s *Server) configure() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	conf := fmt.Sprintf(`listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
`, port, s.dir)
	path := filepath.Join(s.dataDir(), "pgtest.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// lostPortRace reports whether the last start failed because the port was
// taken.
func (s *Server) lostPortRace() bool {
	log, _ := os.ReadFile(s.logPath())
	return bytes.Contains(log, []byte("could not bind")) || bytes.Contains(log, []byte("Address already in use"))
}

func (s *Server) pgCtl(ctx context.Context, args ...string) error {
	// -t matches our own deadline so that pg_ctl gives up (and says why)
	// before the context kills it.
	wait := time.Until(deadline(ctx)) - 5*time.Second
	if wait < 5*time.Second {
		wait = 5 * time.Second
	}
	full := append([]string{"-D", s.dataDir(), "-w", "-t", strconv.Itoa(int(wait.Seconds()))}, args...)
	return s.run(ctx, "pg_ctl", full...)
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(opTimeout)
}

// argv returns the command line that runs a PostgreSQL program as the
// cluster's owner.
func (s *Server) argv(program string, args ...string) []string {
	path := filepath.Join(s.bindir, program)
	if !s.asRoot {
		return append([]string{path}, args...)
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		// /usr/sbin is not on every root PATH.
		runuser = "/usr/sbin/runuser"
	}
	return append([]string{runuser, "-u", "postgres", "--", path}, args...)
}

// run runs a PostgreSQL program as the cluster's owner.
func (s *Server) run(ctx context.Context, program string, args ...string) error {
	argv := s.argv(program, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// The test's working directory may not be readable by postgres.
	cmd.Dir = s.dir
	// If a postmaster ever inherited our output pipe, don't wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", program, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (s *Server) logTail() string {
	log, err := os.ReadFile(s.logPath())
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	const limit = 4000
	if len(log) > limit {
		log = log[len(log)-limit:]
	}
	return "server log:\n" + string(log)
}

// startWatchdog starts a detached shell that crash-stops the cluster and
// deletes its directory once this test process is gone. Cleanups do not run
// when go test -timeout panics or the binary is killed, and a leaked
// postmaster would hold its port and memory until the machine reboots.
func (s *Server) startWatchdog() error {
	const script = `owner=$1 dir=$2
shift 2
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1
rm -rf "$dir"`
	args := append([]string{"-c", script, "pgtest-watchdog", strconv.Itoa(os.Getpid()), s.dir},
		s.argv("pg_ctl", "-D", s.dataDir(), "-m", "immediate", "stop")...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = "/"
	// Its own session, so that a Ctrl-C aimed at go test does not take the
	// watchdog down with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog for %s: %w", s.dir, err)
	}
	s.watchdog = cmd
	return nil
}

func (s *Server) cleanup() error {
	var errs []error
	if s.watchdog != nil {
		// Killed first: it would otherwise race us to delete the directory.
		_ = s.watchdog.Process.Kill()
		_ = s.watchdog.Wait()
	}
	if _, err := os.Stat(filepath.Join(s.dataDir(), "postmaster.pid")); err == nil {
		if err := s.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
	}
	return errors.Join(errs...)
}

// findBinDir locates initdb and pg_ctl. PostgreSQL 15's Debian directory is
// preferred over pg_config, because Debian's pg_config comes with libpq-dev
// and may name a version whose server is not installed.
func findBinDir() (string, error) {
	candidates := []string{os.Getenv(EnvBinDir), "/usr/lib/postgresql/15/bin"}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "pg_ctl")) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, pg_ctl) not found in $%s, /usr/lib/postgresql/15/bin or pg_config --bindir; install them with: apt-get install -y postgresql-15", EnvBinDir)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root, PostgreSQL must run as the postgres OS user: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("parse uid of postgres: %w", err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return fmt.Errorf("parse gid of postgres: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("hand %s to the postgres user: %w", dir, err)
	}
	return nil
}

// freePort returns a port on 127.0.0.1 that nothing listens on. It picks
// below Linux's ephemeral range (32768+) so that the kernel does not hand
// the port to an outgoing connection before the server binds it.
func freePort() (int, error) {
	const lo, hi = 15000, 32000
	var buf [2]byte
	for range 100 {
		_, _ = rand.Read(buf[:])
		port := lo + (int(buf[0])<<8|int(buf[1]))%(hi-lo)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("release probe listener on port %d: %w", port, err)
		}
		return port, nil
	}
	return 0, errors.New("no free TCP port found on 127.0.0.1")
}
