// Command ferretdb runs FerretDB v1 with its SQLite backend so that tests can
// talk the MongoDB wire protocol without a real mongod (which cannot be
// installed on the build machines).
//
// It lives in its own module so that FerretDB's large dependency tree never
// enters the main module's go.mod.
//
// Usage:
//
//	ferretdb -listen 127.0.0.1:27017 -dir /path/to/data
//	ferretdb -ping mongodb://127.0.0.1:27017/
//
// The -ping mode exists so that shell scripts can tell "port open" from
// "answers MongoDB commands" without needing mongosh on the machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP `address` to accept MongoDB wire protocol connections on")
	dir := flag.String("dir", "", "`directory` holding the SQLite databases (created if missing)")
	level := flag.String("log-level", "warn", "log `level`: debug, info, warn or error")
	withParent := flag.Bool("stop-with-parent", false, "stop when the parent process exits (for servers started by tests, which may die without cleaning up)")
	pingURI := flag.String("ping", "", "instead of serving, send one ping to the MongoDB `uri` and exit 0 if it answers")
	flag.Parse()

	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	if *pingURI != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return ping(ctx, *pingURI)
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("parse -log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("resolve -dir %q: %w", *dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}

	// FerretDB insists on a file: URI whose path ends with a slash; building it
	// with net/url keeps odd characters in the path escaped.
	sqliteURL := (&url.URL{Scheme: "file", Path: abs + "/"}).String()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *withParent {
		go stopWithParent(ctx, stop)
	}

	// New binds the listener, so a taken port fails here, before we claim to be up.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return fmt.Errorf("start FerretDB on %s with data in %s: %w", *listen, abs, err)
	}

	// Printed at every level so that logs of a failed test run show where it listened.
	fmt.Fprintf(os.Stderr, "ferretdb: listening on %s, data in %s\n", *listen, abs)

	if err := f.Run(ctx); err != nil {
		return fmt.Errorf("run FerretDB: %w", err)
	}
	fmt.Fprintln(os.Stderr, "ferretdb: stopped")
	return nil
}

// ping connects to uri and runs the ping command once.
func ping(ctx context.Context, uri string) error {
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(2 * time.Second).
		SetConnectTimeout(2 * time.Second)
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", uri, err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()

	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping %s: %w", uri, err)
	}
	return nil
}

// stopWithParent calls stop once this process is reparented, which is how
// a Unix process learns that its parent died. A go test binary killed by
// -timeout runs no cleanups, and without this its servers would live on.
func stopWithParent(ctx context.Context, stop func()) {
	parent := os.Getppid()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if os.Getppid() != parent {
				fmt.Fprintf(os.Stderr, "ferretdb: parent process %d exited; stopping\n", parent)
				stop()
				return
			}
		}
	}
}
