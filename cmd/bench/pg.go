package main

// A throwaway PostgreSQL 15 cluster for the benchmark, set up like the test bed
// (scripts/testbed.sh, internal/pgtest): initdb as the postgres OS user when running as root,
// loopback only, durability traded for speed. Its settings are read back from the server and
// recorded with the figures.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// serverConf is what the benchmark runs with, the test bed's settings; max_wal_size and
// checkpoint_timeout are PostgreSQL's defaults, written out so that they are visibly chosen.
const serverConf = `listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 200
%s
shared_buffers = '128MB'
max_wal_size = '1GB'
checkpoint_timeout = '5min'
log_min_messages = warning
`

// durability is the test bed's trade of durability for speed, or (durable) PostgreSQL's
// defaults, under which every autocommitted INSERT of the naive path waits for a WAL flush.
func durability(durable bool) string {
	if durable {
		return "fsync = on\nsynchronous_commit = on\nfull_page_writes = on"
	}
	return "fsync = off\nsynchronous_commit = off\nfull_page_writes = off"
}

// recordedSettings are read back from the server into the JSON.
var recordedSettings = []string{
	"server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "max_wal_size",
	"checkpoint_timeout", "wal_level", "work_mem", "maintenance_work_mem", "effective_io_concurrency",
	"autovacuum", "wal_compression", "default_toast_compression", "max_connections",
}

type pgServer struct {
	bindir   string
	dir      string
	port     int
	asRoot   bool
	watchdog *exec.Cmd
}

func pgBinDir() (string, error) {
	for _, d := range []string{os.Getenv("PG_BINDIR"), "/usr/lib/postgresql/15/bin"} {
		if d == "" {
			continue
		}
		if fi, err := os.Stat(filepath.Join(d, "initdb")); err == nil && fi.Mode()&0o111 != 0 {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL 15 server binaries not found in $PG_BINDIR or /usr/lib/postgresql/15/bin (apt-get install -y postgresql-15)")
}

// startPG initializes and starts a cluster under parent. The caller must call stop.
func startPG(ctx context.Context, parent string, durable bool) (*pgServer, error) {
	bindir, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "bench-pg-")
	if err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	s := &pgServer{bindir: bindir, dir: dir, asRoot: os.Geteuid() == 0}
	if s.asRoot {
		if err := chownToPostgres(dir); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := s.run(ctx, "initdb", "-D", s.dataDir(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.startWatchdog(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	conf, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = conf.WriteString("\ninclude 'bench.conf'\n")
		err = errors.Join(err, conf.Close())
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("postgresql.conf: %w", err)
	}
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			s.stop()
			return nil, err
		}
		path := filepath.Join(s.dataDir(), "bench.conf")
		if err := os.WriteFile(path, fmt.Appendf(nil, serverConf, s.port, s.dir, durability(durable)), 0o644); err != nil {
			s.stop()
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		err = s.run(ctx, "pg_ctl", "-D", s.dataDir(), "-w", "-t", "60", "-l", s.logPath(), "start")
		if err == nil {
			return s, nil
		}
		log, _ := os.ReadFile(s.logPath())
		if attempt == 3 || !bytes.Contains(log, []byte("could not bind")) {
			s.stop()
			return nil, fmt.Errorf("%w\n%s", err, tail(log, 2000))
		}
	}
}

func (s *pgServer) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *pgServer) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// URL is the maintenance database's URL; db names another database.
func (s *pgServer) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// stop shuts the server down (fast, then immediate) and deletes the cluster.
func (s *pgServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var errs []error
	if s.watchdog != nil {
		_ = s.watchdog.Process.Kill()
		_ = s.watchdog.Wait()
	}
	if _, err := os.Stat(filepath.Join(s.dataDir(), "postmaster.pid")); err == nil {
		if err := s.run(ctx, "pg_ctl", "-D", s.dataDir(), "-w", "-t", "60", "-m", "fast", "stop"); err != nil {
			if err2 := s.run(ctx, "pg_ctl", "-D", s.dataDir(), "-w", "-t", "20", "-m", "immediate", "stop"); err2 != nil {
				errs = append(errs, err, err2)
			}
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *pgServer) argv(program string, args ...string) []string {
	path := filepath.Join(s.bindir, program)
	if !s.asRoot {
		return append([]string{path}, args...)
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		runuser = "/usr/sbin/runuser"
	}
	return append([]string{runuser, "-u", "postgres", "--", path}, args...)
}

func (s *pgServer) run(ctx context.Context, program string, args ...string) error {
	argv := s.argv(program, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir // postgres may not be allowed to read our working directory
	// Its own session: a Ctrl-C aimed at make must not reach the postmaster before we stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", program, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// startWatchdog stops the cluster and deletes it once this process is gone, even after a
// kill -9 that skips every cleanup (internal/pgtest does the same).
func (s *pgServer) startWatchdog() error {
	const script = `owner=$1 dir=$2
shift 2
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1
rm -rf "$dir"`
	args := append([]string{"-c", script, "bench-pg-watchdog", strconv.Itoa(os.Getpid()), s.dir},
		s.argv("pg_ctl", "-D", s.dataDir(), "-m", "immediate", "stop")...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the cluster's watchdog: %w", err)
	}
	s.watchdog = cmd
	return nil
}

// settings reads the recorded settings as the server shows them.
func (s *pgServer) settings(ctx context.Context, pool *pgxpool.Pool) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range recordedSettings {
		var v string
		if err := pool.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return nil, fmt.Errorf("read setting %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root, PostgreSQL must run as the postgres OS user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("hand %s to the postgres user: %w", dir, err)
	}
	return nil
}

// freePort returns a loopback port below the ephemeral range that nothing listens on.
func freePort() (int, error) {
	p := 15000 + int(time.Now().UnixNano()%17000)
	for range 17000 {
		if p++; p >= 32000 {
			p = 15000
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			return 0, err
		}
		return p, nil
	}
	return 0, errors.New("no free TCP port on 127.0.0.1 between 15000 and 32000")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
