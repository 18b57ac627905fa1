// Command samplegen writes the deterministic StellaOps sample data of internal/sample as a
// mongodump directory, or loads it into a live MongoDB-compatible server.
//
//	samplegen -out DIR [-seed N] [-scale N] [-as-of RFC3339] [-compress none|gzip|zstd]
//	samplegen -mongo URI [-seed N] [-scale N] [-as-of RFC3339] [-ferret-safe] [-drop]
//	samplegen -list      print the namespaces of the sample, one per line
//
// The default as-of is fixed (sample.DefaultAsOf) so that the bundled demo is the same on
// every machine; a conversion of the sample should be given the same --as-of.
//
// Exit codes: 0 success, 1 failure, 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/stellaops/convert/internal/sample"
	"github.com/stellaops/convert/pipeline/extract/dump"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a usage error: exit 2, after the message.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := generate(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "samplegen: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "samplegen: %v\n", err)
		return 1
	}
}

func generate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("samplegen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write a mongodump directory here")
	mongoURI := fs.String("mongo", "", "load into the MongoDB-compatible server at this URI instead")
	list := fs.Bool("list", false, "print the sample's namespaces (db.collection), one per line, and exit")
	seed := fs.Uint64("seed", 1, "random seed")
	scale := fs.Int("scale", 1, "size multiplier; 1 is a few thousand documents")
	asOf := fs.String("as-of", sample.DefaultAsOf.Format(time.RFC3339), "instant the dates are spread around (RFC 3339)")
	compress := fs.String("compress", "none", "compression of the dump files: none, gzip or zstd")
	ferretSafe := fs.Bool("ferret-safe", false, "with -mongo: leave out documents FerretDB refuses")
	drop := fs.Bool("drop", false, "with -mongo: drop each sample collection before loading it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	modes := 0
	for _, set := range []bool{*out != "", *mongoURI != "", *list} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return fmt.Errorf("%w: give exactly one of -out DIR, -mongo URI or -list", errUsage)
	}
	if *scale < 1 {
		return fmt.Errorf("%w: -scale must be at least 1", errUsage)
	}
	t, err := time.Parse(time.RFC3339Nano, *asOf)
	if err != nil {
		return fmt.Errorf("%w: -as-of: %v", errUsage, err)
	}
	comp, err := parseCompression(*compress)
	if err != nil {
		return err
	}

	colls := sample.Generate(sample.Options{Seed: *seed, Scale: *scale, AsOf: t})
	switch {
	case *list:
		for _, c := range colls {
			fmt.Fprintln(stdout, c.Namespace())
		}
		return nil
	case *out != "":
		if err := sample.WriteDump(ctx, *out, colls, comp); err != nil {
			return err
		}
		printCounts(stdout, colls, nil)
		fmt.Fprintf(stdout, "wrote %s (as-of %s, seed %d, scale %d)\n", *out, t.UTC().Format(time.RFC3339Nano), *seed, *scale)
		return nil
	}
	client, err := mongo.Connect(options.Client().ApplyURI(*mongoURI).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	res, err := sample.Load(ctx, client, colls, sample.LoadOptions{FerretSafe: *ferretSafe, Drop: *drop})
	switch {
	case err != nil && mongo.IsDuplicateKeyError(err) && !*drop:
		return fmt.Errorf("%w (the sample is there already? -drop replaces it)", err)
	case err != nil && !*ferretSafe:
		// FerretDB drops the connection on a value it cannot store, which tells nothing.
		return fmt.Errorf("%w (if the server is FerretDB, add -ferret-safe)", err)
	case err != nil:
		return err
	}
	printCounts(stdout, colls, res.Skipped)
	fmt.Fprintf(stdout, "inserted %d documents, left out %d (as-of %s, seed %d, scale %d)\n", res.Inserted, len(res.Skipped), t.UTC().Format(time.RFC3339Nano), *seed, *scale)
	return nil
}

func parseCompression(s string) (dump.Compression, error) {
	switch s {
	case "none", "":
		return dump.None, nil
	case "gzip":
		return dump.Gzip, nil
	case "zstd":
		return dump.Zstd, nil
	}
	return dump.None, fmt.Errorf("%w: -compress %q: want none, gzip or zstd", errUsage, s)
}

func printCounts(w io.Writer, colls []sample.Collection, skipped []sample.Skipped) {
	left := make(map[string]int)
	for _, s := range skipped {
		left[s.DB+"."+s.Collection]++
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "NAMESPACE\tDOCS\t"
	if skipped != nil {
		header = "NAMESPACE\tDOCS\tLEFT OUT\t"
	}
	fmt.Fprintln(tw, header)
	total := 0
	for _, c := range colls {
		total += len(c.Docs)
		if skipped != nil {
			fmt.Fprintf(tw, "%s\t%d\t%d\t\n", c.Namespace(), len(c.Docs), left[c.Namespace()])
		} else {
			fmt.Fprintf(tw, "%s\t%d\t\n", c.Namespace(), len(c.Docs))
		}
	}
	if skipped != nil {
		fmt.Fprintf(tw, "TOTAL\t%d\t%d\t\n", total, len(skipped))
	} else {
		fmt.Fprintf(tw, "TOTAL\t%d\t\n", total)
	}
	_ = tw.Flush()
}
