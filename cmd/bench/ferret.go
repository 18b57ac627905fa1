package main

// FerretDB (bin/ferretdb: v1.24 with its SQLite backend) as the live source of measurement (d).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

type ferretServer struct {
	cmd    *exec.Cmd
	dir    string
	port   int
	exited chan struct{}
}

// startFerret starts bin on a free loopback port with its data in a new directory under parent.
// The caller must call stop.
func startFerret(ctx context.Context, bin, parent string) (*ferretServer, error) {
	dir, err := os.MkdirTemp(parent, "ferretdb-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "ferretdb.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	// -stop-with-parent: the server must not outlive a harness killed without cleanups.
	cmd := exec.Command(bin, "-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"-dir", filepath.Join(dir, "data"), "-stop-with-parent")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches us, not it
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &ferretServer{cmd: cmd, dir: dir, port: port, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.ping(pctx)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "ferretdb.log"))
			s.stop()
			return nil, fmt.Errorf("FerretDB exited during startup:\n%s", tail(log, 2000))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("FerretDB on port %d does not answer ping: %w", port, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *ferretServer) URI() string { return fmt.Sprintf("mongodb://127.0.0.1:%d/", s.port) }

func (s *ferretServer) ping(ctx context.Context) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	return c.Ping(ctx, readpref.Primary())
}

func (s *ferretServer) client() (*mongo.Client, error) {
	return mongo.Connect(options.Client().ApplyURI(s.URI()).SetServerSelectionTimeout(10 * time.Second))
}

// stop terminates the server (SIGTERM, SIGKILL after 10 s) and deletes its data.
func (s *ferretServer) stop() error {
	var errs []error
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			errs = append(errs, errors.New("FerretDB ignored SIGTERM for 10 s; killed"))
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// load inserts documents into db.coll in unordered batches of 1000; docs calls emit for each
// document, which is only valid during the call.
func (s *ferretServer) load(ctx context.Context, db, coll string, docs func(emit func(bson.Raw) error) error) (int, error) {
	c, err := s.client()
	if err != nil {
		return 0, err
	}
	defer c.Disconnect(context.Background())
	col := c.Database(db).Collection(coll)
	var batch []any
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := col.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
		if err != nil {
			return fmt.Errorf("insert into FerretDB %s.%s: %w", db, coll, err)
		}
		n += len(res.InsertedIDs)
		batch = batch[:0]
		return nil
	}
	err = docs(func(d bson.Raw) error {
		batch = append(batch, bson.Raw(append([]byte(nil), d...)))
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

// findAll reads every document of db.coll sorted by _id, batches of 1000, as the tool's live
// source reads a range: FerretDB's own ceiling, without the tool.
func (s *ferretServer) findAll(ctx context.Context, db, coll string) (int, int64, error) {
	c, err := s.client()
	if err != nil {
		return 0, 0, err
	}
	defer c.Disconnect(context.Background())
	cur, err := c.Database(db).Collection(coll).Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(1000))
	if err != nil {
		return 0, 0, err
	}
	defer cur.Close(context.Background())
	n, size := 0, int64(0)
	for cur.Next(ctx) {
		n++
		size += int64(len(cur.Current))
	}
	return n, size, cur.Err()
}
