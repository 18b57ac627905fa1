// Package ferrettest gives tests a MongoDB-compatible server: FerretDB v1
// with its SQLite backend, built from tools/ferretdb (`make ferretdb`).
//
// Most tests want [URI] and [Database]: the shared server that `make test`
// starts (scripts/testbed.sh) and announces through CONVERT_TEST_MONGO_URI.
// Tests that stop or crash the server use [StartServer] for a private one.
//
// When the shared server is not configured, tests are skipped on a developer
// machine and fail under CI=true, so that a misconfigured CI cannot pass by
// skipping everything.
package ferrettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// EnvURI names the environment variable holding the shared server's URI.
const EnvURI = "CONVERT_TEST_MONGO_URI"

// EnvBin names the environment variable holding the FerretDB binary used by
// [StartServer]; it defaults to bin/ferretdb in the repository root.
const EnvBin = "CONVERT_TEST_FERRETDB_BIN"

const howToRun = "run the tests with `make test`, which builds bin/ferretdb, starts throwaway PostgreSQL and FerretDB servers " +
	"(scripts/testbed.sh start DIR; source DIR/env) and sets " + EnvURI + " and " + EnvBin

// opTimeout bounds every single server operation so that a wedged server
// fails the test instead of hanging until the global go test timeout.
const opTimeout = 60 * time.Second

// maxNameLen keeps generated database names short enough for every FerretDB
// backend and for MongoDB's namespace limits, with room for collection names.
const maxNameLen = 38

// unavailable skips the test, or fails it under CI where a skip would hide
// that nothing was tested.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("ferrettest: %s; under CI=true this is an error: %s", why, howToRun)
	}
	t.Skipf("ferrettest: %s; %s", why, howToRun)
}

// URI returns the MongoDB URI of the shared FerretDB server.
func URI(t testing.TB) string {
	t.Helper()
	uri := os.Getenv(EnvURI)
	if uri == "" {
		unavailable(t, EnvURI+" is not set")
	}
	return uri
}

// Database returns a unique database name for use on the server at [URI]
// and drops that database when the test ends. Like MongoDB, FerretDB creates
// the database on first write, so nothing is created here.
func Database(t testing.TB) string {
	t.Helper()
	uri := URI(t)
	name := databaseName(t.Name())
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := dropDatabase(ctx, uri, name); err != nil {
			t.Errorf("ferrettest: %v", err)
		}
	})
	return name
}

// databaseName derives a unique database name of at most 38 characters from
// [a-z0-9_] from a test name, keeping enough of it to find the test in logs.
func databaseName(testName string) string {
	const suffixLen = 1 + 8 // "_" and 4 random bytes in hex
	var b strings.Builder
	b.WriteString("t_")
	lastUnderscore := true
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= maxNameLen-suffixLen {
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
	buf := make([]byte, 4)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails on Linux.
	b.WriteString(hex.EncodeToString(buf))
	return b.String()
}

func dropDatabase(ctx context.Context, uri, name string) error {
	client, err := connect(uri)
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	if err := client.Database(name).Drop(ctx); err != nil {
		return fmt.Errorf("drop database %s at %s: %w", name, uri, err)
	}
	return nil
}

func connect(uri string) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", uri, err)
	}
	return client, nil
}

// ping reports whether the server at uri answers the ping command.
func ping(ctx context.Context, uri string) error {
	client, err := connect(uri)
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping %s: %w", uri, err)
	}
	return nil
}

// Server is a private FerretDB process owned by one test. Its methods may be
// called from any goroutine; they do not call t.Fatal, so that tests can
// stop the server while other goroutines use it.
type Server struct {
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has exited
}

// StartServer starts FerretDB on a free port of 127.0.0.1 with its data in
// a temporary directory, and stops it when the test ends.
func StartServer(t testing.TB) *Server {
	t.Helper()

	bin, err := findBinary()
	if err != nil {
		unavailable(t, err.Error())
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("ferrettest: %v", err)
		}
	})

	// A port found free can be taken before FerretDB binds it; try another.
	const attempts = 3
	for i := 1; ; i++ {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("ferrettest: %v", err)
		}
		err := s.Start()
		if err == nil {
			return s
		}
		if i == attempts || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("ferrettest: %v", err)
		}
		t.Logf("ferrettest: port %d was taken before FerretDB bound it; retrying", s.port)
	}
}

// URI returns the server's MongoDB URI.
func (s *Server) URI() string {
	return fmt.Sprintf("mongodb://127.0.0.1:%d/", s.port)
}

// Start starts the stopped server on the same port with the same data and
// returns once it answers ping.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("start FerretDB on port %d: already running", s.port)
	}

	logPath := s.logPath()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open FerretDB log: %w", err)
	}
	// The child gets its own copy of the descriptor, so ours can go now.
	defer func() { _ = logFile.Close() }()
	logStart, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("seek FerretDB log: %w", err)
	}

	// -stop-with-parent: cleanups do not run when go test -timeout panics,
	// and the server must not outlive the test binary then.
	cmd := exec.Command(s.bin, "-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		"-dir", filepath.Join(s.dir, "data"), "-stop-with-parent")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		_ = s.terminate(syscall.SIGKILL)
		return fmt.Errorf("start FerretDB on port %d: %w\nlog:\n%s", s.port, err, readFrom(logPath, logStart))
	}
	return nil
}

// Stop shuts the server down gracefully (SIGTERM). Stopping a stopped
// server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.terminate(syscall.SIGTERM)
}

// Kill stops the server as if it crashed (SIGKILL).
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.terminate(syscall.SIGKILL)
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "ferretdb.log") }

// terminate sends sig and waits for the process to exit, escalating to
// SIGKILL if it lingers. The caller holds s.mu.
func (s *Server) terminate(sig syscall.Signal) error {
	if s.cmd == nil {
		return nil
	}
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil

	select {
	case <-exited:
		return nil // died on its own; nothing to stop
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal FerretDB (pid %d): %w", cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(15 * time.Second):
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
		return fmt.Errorf("FerretDB (pid %d) ignored %v for 15s and was killed", cmd.Process.Pid, sig)
	case <-time.After(15 * time.Second):
		return fmt.Errorf("FerretDB (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// waitReady polls until the port accepts connections and the server answers
// ping. The TCP probe comes first because the driver's server selection
// would otherwise spend seconds on a port that is not open yet.
func (s *Server) waitReady(ctx context.Context) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	var last error
	for {
		select {
		case <-s.exited:
			return errors.New("FerretDB exited during startup")
		default:
		}

		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = ping(pingCtx, s.URI())
			cancel()
			if err == nil {
				return nil
			}
		}
		last = err

		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready before the deadline: %w", last)
		case <-s.exited:
			return errors.New("FerretDB exited during startup")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readFrom returns the file's content from offset on, trimmed to its tail.
func readFrom(path string, offset int64) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if offset <= int64(len(data)) {
		data = data[offset:]
	}
	const limit = 4000
	if len(data) > limit {
		data = data[len(data)-limit:]
	}
	return string(bytes.TrimSpace(data))
}

// findBinary locates the FerretDB binary: $CONVERT_TEST_FERRETDB_BIN, else
// bin/ferretdb in the repository root.
func findBinary() (string, error) {
	if bin := os.Getenv(EnvBin); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBin, bin, err)
		}
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "ferretdb")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("FerretDB binary not built (make ferretdb): %w", err)
	}
	return bin, nil
}

// repoRoot walks up from the working directory (the package directory under
// go test) to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
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
