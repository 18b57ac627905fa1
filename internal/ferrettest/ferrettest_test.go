package ferrettest

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^t_[a-z0-9_]*[a-z0-9]_[0-9a-f]{8}$`)
	for _, name := range []string{
		"TestX",
		"TestCopy/nested_subtest/with spaces & symbols",
		strings.Repeat("VeryLongTestName", 10),
		"Test#01/ünïcode",
	} {
		got := databaseName(name)
		if !valid.MatchString(got) || len(got) > maxNameLen || strings.Contains(got, "__") {
			t.Errorf("databaseName(%q) = %q: not a tidy name of at most %d characters", name, got, maxNameLen)
		}
	}
	if a, b := databaseName("TestX"), databaseName("TestX"); a == b {
		t.Errorf("databaseName is not unique: got %q twice", a)
	}
}

// roundTrip writes a document to db.c on the server at uri and reads it back.
func roundTrip(ctx context.Context, t *testing.T, uri, db string, v int) {
	t.Helper()
	client, err := connect(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	coll := client.Database(db).Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: v}, {Key: "v", Value: v}}); err != nil {
		t.Fatalf("insert into %s at %s: %v", db, uri, err)
	}
	var got struct{ V int }
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: v}}).Decode(&got); err != nil {
		t.Fatalf("find in %s at %s: %v", db, uri, err)
	}
	if got.V != v {
		t.Fatalf("read back v=%d, want %d", got.V, v)
	}
}

func listDatabases(ctx context.Context, t *testing.T, uri string) []string {
	t.Helper()
	client, err := connect(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	names, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatalf("list databases at %s: %v", uri, err)
	}
	return names
}

func TestDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	uri := URI(t)

	var db string
	t.Run("inner", func(t *testing.T) {
		db = Database(t)
		roundTrip(ctx, t, uri, db, 1)
		if !slices.Contains(listDatabases(ctx, t, uri), db) {
			t.Fatalf("database %s not listed after a write", db)
		}
	})
	if slices.Contains(listDatabases(ctx, t, uri), db) {
		t.Errorf("database %s still exists after its test ended", db)
	}
}

func TestStartServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	srv := StartServer(t)
	roundTrip(ctx, t, srv.URI(), "kept", 1)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	pingCtx, pingCancel := context.WithTimeout(ctx, time.Second)
	defer pingCancel()
	if err := ping(pingCtx, srv.URI()); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	roundTrip(ctx, t, srv.URI(), "kept", 2)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start after Kill: %v", err)
	}

	client, err := connect(srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	n, err := client.Database("kept").Collection("c").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatalf("count documents after restarts: %v", err)
	}
	if n != 2 {
		t.Errorf("%d documents after restarts, want 2", n)
	}
	if err := srv.Start(); err == nil {
		t.Error("Start on a running server did not fail")
	}
}
