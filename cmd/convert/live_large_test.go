package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
)

// TestLiveLargeDocuments: a collection of large documents, too many bytes for the driver to
// accept in one reply of 1000 documents (FerretDB answers a batch whatever its size), converts
// in generic mode: every document loads with its values, verify is clean, and the tool's peak
// memory stays within 256 MiB plus four times the largest document.
func TestLiveLargeDocuments(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	pgURL := pgtest.Database(t)
	client := mongoClient(t, uri)

	const (
		bigDocs   = 4
		bigSize   = 8 << 20
		smallDocs = 260
		smallSize = 300 << 10
	)
	// The large documents sit together, so that one reply sized from the average would still
	// hold several of them.
	var docs []bson.D
	seed := sha256.Sum256([]byte(t.Name()))
	text := func(n int) string {
		var b bytes.Buffer
		b.Grow(n)
		for b.Len() < n {
			seed = sha256.Sum256(seed[:])
			b.WriteString(hex.EncodeToString(seed[:]))
		}
		return b.String()[:n]
	}
	total := 0
	for i := 0; i < bigDocs+smallDocs; i++ {
		size := smallSize
		if i >= 100 && i < 100+bigDocs {
			size = bigSize
		}
		total += size
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "tenant", Value: "t"}, {Key: "n", Value: int32(i)},
			{Key: "body", Value: bson.D{{Key: "text", Value: text(size)}, {Key: "len", Value: int32(size)}}}})
	}
	if total <= 48_000_000 {
		t.Fatalf("test data of %d bytes would fit one reply the driver accepts", total)
	}
	began := time.Now()
	seedCollection(t, client, db, "vex", docs)
	t.Logf("seeded %d MiB in %s", total>>20, time.Since(began).Round(time.Millisecond))

	start := time.Now()
	// --retry-for keeps a regression (the same too-large reply asked again and again) from
	// taking ten minutes to fail.
	res, maxRSS := convertRSS(t, "run", "--from", uri, "--to", pgURL, "--json", "--retry-for", "20s", "--collection", db+".vex")
	if res.code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("run took %s, peak RSS %d MiB for %d MiB of documents", time.Since(start).Round(time.Millisecond), maxRSS>>20, total>>20)
	rep := parseReport(t, res.stdout)
	if c := rep.Collections[0]; c.Read != int64(len(docs)) || c.Loaded != int64(len(docs)) {
		t.Fatalf("read %d loaded %d, want %d", c.Read, c.Loaded, len(docs))
	}
	if limit := int64(256<<20 + 4*bigSize); maxRSS > limit {
		t.Errorf("peak RSS %d MiB, more than 256 MiB + 4 x the largest document (%d MiB)", maxRSS>>20, limit>>20)
	}
	began = time.Now()
	checkGenericTable(t, pgConn(t, pgURL), strings.ToLower(db)+".vex", db, "vex", docs)
	t.Logf("compared values in %s", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	verifyClean(t, uri, pgURL, rep.RunID)
	t.Logf("verified in %s", time.Since(began).Round(time.Millisecond))
}

// convertRSS runs the binary like convert and also returns its peak resident set in bytes:
// the largest VmHWM of /proc/PID/status seen while it runs, sampled every 20 ms. (The child's
// rusage would not do: until its exec the child shares the test's memory, and Linux counts
// that in its ru_maxrss.)
func convertRSS(t *testing.T, args ...string) (result, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = os.Environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("convert %v: %v", args, err)
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if hwm := vmHWM(status); hwm > peak {
				peak = hwm
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-sampled
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("convert %v: %v", args, err)
	}
	if peak == 0 {
		t.Fatal("no VmHWM read from " + status)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}, peak
}

// vmHWM is the peak resident set in bytes that a /proc status file reports, 0 if unreadable.
func vmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
