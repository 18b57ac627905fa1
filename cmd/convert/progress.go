package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows a bar per collection on a terminal, and periodic slog lines otherwise.
type progress struct {
	mu     sync.Mutex
	tty    bool
	w      io.Writer
	log    *slog.Logger
	bars   map[string]*progressbar.ProgressBar
	counts map[string]int64
	starts map[string]time.Time
	last   map[string]time.Time
}

// isTerminal tells whether w is a terminal (progress bars) rather than a file or pipe (logs).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newProgress(w io.Writer, log *slog.Logger) *progress {
	return &progress{tty: isTerminal(w), w: w, log: log, bars: map[string]*progressbar.ProgressBar{},
		counts: map[string]int64{}, starts: map[string]time.Time{}, last: map[string]time.Time{}}
}

func (p *progress) CollectionStarted(name string, total, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[name] = done
	p.starts[name] = time.Now()
	p.last[name] = time.Now()
	if !p.tty {
		return
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-32s", name)),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("docs"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	_ = bar.Set64(done)
	p.bars[name] = bar
}

func (p *progress) Advanced(name string, docs int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[name] += int64(docs)
	if bar := p.bars[name]; bar != nil {
		_ = bar.Add(docs)
		return
	}
	if time.Since(p.last[name]) >= 5*time.Second {
		p.last[name] = time.Now()
		el := time.Since(p.starts[name]).Seconds()
		p.log.Info("progress", "collection", name, "read", p.counts[name], "docs_per_s", int64(float64(p.counts[name])/max(el, 1e-9)))
	}
}

func (p *progress) CollectionDone(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if bar := p.bars[name]; bar != nil {
		_ = bar.Finish()
		delete(p.bars, name)
	}
}

// Close ends every bar still shown.
func (p *progress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, bar := range p.bars {
		_ = bar.Exit()
		delete(p.bars, name)
	}
}

// table prints aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	return newTableWith(w, tabwriter.AlignRight, header...)
}

// newLeftTable aligns columns to the left: for text columns such as filters.
func newLeftTable(w io.Writer, header ...string) *table {
	return newTableWith(w, 0, header...)
}

func newTableWith(w io.Writer, flags uint, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', flags)}
	t.tw.Write([]byte(strings.Join(header, "\t") + "\t\n"))
	return t
}

func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	t.tw.Write([]byte(strings.Join(parts, "\t") + "\t\n"))
}

func (t *table) flush() { _ = t.tw.Flush() }
