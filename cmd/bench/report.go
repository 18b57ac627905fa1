package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	formatVersion = 1
	rssTarget     = 256 << 20 // bench.md: peak RSS <= 256 MiB
	mb            = 1e6       // MB/s are source BSON bytes / 10^6 per second
)

// results is what the JSON file holds.
type results struct {
	FormatVersion int               `json:"format_version"`
	StartedAt     time.Time         `json:"started_at"`
	FinishedAt    time.Time         `json:"finished_at"`
	ElapsedS      float64           `json:"elapsed_s"`
	Status        string            `json:"status"` // ok, failed
	Error         string            `json:"error,omitempty"`
	Machine       map[string]any    `json:"machine"`
	Server        map[string]string `json:"server_settings"`
	Config        map[string]any    `json:"config"`
	Commands      map[string]string `json:"commands"`
	Units         map[string]string `json:"units"`
	Sizes         []*sizeResult     `json:"sizes"`
	Scale         []*scaleResult    `json:"scale,omitempty"`
	Notes         []string          `json:"notes,omitempty"`
}

type sizeResult struct {
	RequestedDocs int            `json:"requested_docs"` // 0: each shape's default count
	Shapes        []*shapeResult `json:"shapes"`
}

type shapeResult struct {
	Shape         string           `json:"shape"`
	Kind          string           `json:"kind"`
	Note          string           `json:"note"`
	Collection    string           `json:"collection"`
	RequestedDocs int              `json:"requested_docs"`
	Docs          int              `json:"docs"`
	CountNote     string           `json:"count_note,omitempty"`
	SourceBytes   int64            `json:"source_bytes"`
	AvgDocBytes   float64          `json:"avg_doc_bytes"`
	CopyBytes     int64            `json:"copy_file_bytes"`
	TableBytes    int64            `json:"table_bytes_after_b,omitempty"`
	RowsByTable   map[string]int64 `json:"rows_by_table"`
	Checksum      string           `json:"checksum"`
	GenerateS     float64          `json:"generate_s"`
	PrecomputeS   float64          `json:"precompute_s"`
	Measurements  []*measurement   `json:"measurements"`
	Ratios        ratios           `json:"ratios"`
	PeakRSSBytes  int64            `json:"peak_rss_bytes"`
	RSSTarget     int64            `json:"rss_target_bytes"`
	Profile       string           `json:"cpu_profile,omitempty"`
	ProfiledRunS  float64          `json:"profiled_run_s,omitempty"`
	Commands      []string         `json:"commands"`
}

// measurement is one figure: the median of its runs.
type measurement struct {
	ID       string    `json:"id"` // a1, aW, b, c, d, extract, keypass, transform, load
	What     string    `json:"what"`
	Docs     int       `json:"docs"`         // documents per run
	Bytes    int64     `json:"source_bytes"` // source BSON bytes of those documents
	RunsS    []float64 `json:"runs_s"`
	MedianS  float64   `json:"median_s"`
	DocsPerS float64   `json:"docs_per_s"`
	MBPerS   float64   `json:"mb_per_s"`
	Streams  int       `json:"streams,omitempty"`
	// ExtrapolatedS is the naive path's time for every document of the shape.
	ExtrapolatedS float64 `json:"extrapolated_s,omitempty"`
	// PeakRSSBytes per run of bin/convert (b, d).
	PeakRSSBytes []int64 `json:"peak_rss_bytes,omitempty"`
	Label        string  `json:"label,omitempty"`
	Extra        string  `json:"extra,omitempty"`
}

func (m *measurement) finish(docs int, bytes int64, runs []time.Duration) {
	m.Docs, m.Bytes = docs, bytes
	for _, r := range runs {
		m.RunsS = append(m.RunsS, r.Seconds())
	}
	if m.MedianS = median(m.RunsS); m.MedianS > 0 {
		m.DocsPerS = float64(docs) / m.MedianS
		m.MBPerS = float64(bytes) / mb / m.MedianS
	}
}

type ratios struct {
	LimitDocsPerS float64 `json:"limit_docs_per_s"` // the better of one stream and --workers streams
	LimitFrom     string  `json:"limit_from"`
	BA            float64 `json:"b_over_a"`
	BATarget      float64 `json:"b_over_a_target"`
	BAMeets       *bool   `json:"b_over_a_meets,omitempty"`
	// BAAnalyze is (b) against the limit plus the ANALYZE (b) must run (cli.md): for
	// information, no target.
	BAAnalyze float64 `json:"b_over_a_plus_analyze,omitempty"`
	// BAPaired is the median over runs of (b)/(a) within each run, the better limit of that
	// run against that run's (b), which ran right after it: for information, it is the ratio
	// least moved by a host whose speed drifts between runs.
	BAPaired float64 `json:"b_over_a_paired,omitempty"`
	BC       float64 `json:"b_over_c"`
	BCTarget float64 `json:"b_over_c_target,omitempty"` // 0: reported without a target
	BCMeets  *bool   `json:"b_over_c_meets,omitempty"`
	// FreshBA and FreshBC are (b-fresh) against (a-fresh) and (c): a fresh target's figures,
	// each against the limit of the same work.
	FreshBA  float64  `json:"b_fresh_over_a_fresh,omitempty"`
	FreshBC  float64  `json:"b_fresh_over_c,omitempty"`
	RSSMeets *bool    `json:"peak_rss_within_target,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// scaleResult compares a shape across sizes: flat memory and time linear in documents.
type scaleResult struct {
	Shape        string    `json:"shape"`
	Docs         []int     `json:"docs"`
	SourceBytes  []int64   `json:"source_bytes"`
	PeakRSSBytes []int64   `json:"peak_rss_bytes"`
	RSSSpread    float64   `json:"peak_rss_largest_over_smallest"`
	RSSFlat      bool      `json:"peak_rss_within_20_percent"`
	SecPerMDoc   []float64 `json:"convert_s_per_million_docs"`
	TimeLinear   float64   `json:"s_per_doc_largest_over_smallest"`
}

// add finishes m over its runs and appends it to the shape's measurements.
func (s *shapeResult) add(m *measurement, docs int, bytes int64, runs []time.Duration) {
	m.finish(docs, bytes, runs)
	s.Measurements = append(s.Measurements, m)
}

func (s *shapeResult) get(id string) *measurement {
	for _, m := range s.Measurements {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// computeRatios fills the ratios of bench.md from the measurements.
func (s *shapeResult) computeRatios() {
	r := &s.Ratios
	for _, id := range []string{"a1", "aW"} {
		if m := s.get(id); m != nil && m.DocsPerS > r.LimitDocsPerS {
			r.LimitDocsPerS, r.LimitFrom = m.DocsPerS, m.What
		}
	}
	t := targets[s.Kind]
	r.BATarget, r.BCTarget = t.ba, t.bc
	b := s.get("b")
	if b == nil {
		return
	}
	if r.LimitDocsPerS > 0 {
		r.BA = b.DocsPerS / r.LimitDocsPerS
		ok := r.BA >= r.BATarget
		r.BAMeets = &ok
	}
	r.BAPaired = pairedRatio(b, s.get("a1"), s.get("aW"))
	if an := s.get("analyze"); an != nil && r.LimitDocsPerS > 0 && b.MedianS > 0 {
		r.BAAnalyze = (float64(s.Docs)/r.LimitDocsPerS + an.MedianS) / b.MedianS
	}
	if c := s.get("c"); c != nil && c.DocsPerS > 0 {
		r.BC = b.DocsPerS / c.DocsPerS
		if r.BCTarget > 0 {
			ok := r.BC >= r.BCTarget
			r.BCMeets = &ok
		}
	}
	if bf, af := s.get("b-fresh"), s.get("a-fresh"); bf != nil && af != nil && af.DocsPerS > 0 {
		r.FreshBA = bf.DocsPerS / af.DocsPerS
	}
	if bf, c := s.get("b-fresh"), s.get("c"); bf != nil && c != nil && c.DocsPerS > 0 {
		r.FreshBC = bf.DocsPerS / c.DocsPerS
	}
	for _, v := range b.PeakRSSBytes {
		s.PeakRSSBytes = max(s.PeakRSSBytes, v)
	}
	s.RSSTarget = rssTarget
	ok := s.PeakRSSBytes <= rssTarget
	r.RSSMeets = &ok
}

// pairedRatio is the median over runs i of limit_i / b_i in time, limit_i the faster of the
// limits' run i; 0 unless every measurement has the same number of runs.
func pairedRatio(b *measurement, limits ...*measurement) float64 {
	var ratios []float64
	for i, bs := range b.RunsS {
		best := 0.0
		for _, l := range limits {
			if l == nil || len(l.RunsS) != len(b.RunsS) {
				return 0
			}
			if best == 0 || l.RunsS[i] < best {
				best = l.RunsS[i]
			}
		}
		if best == 0 || bs <= 0 {
			return 0
		}
		ratios = append(ratios, best/bs)
	}
	return median(ratios)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	switch {
	case len(s) == 0:
		return 0
	case len(s)%2 == 1:
		return s[len(s)/2]
	default:
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
}

func verdict(ok *bool, good, bad string) string {
	if ok == nil {
		return ""
	}
	if *ok {
		return good
	}
	return bad
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
}

// printShape prints one shape's table.
func printShape(w io.Writer, s *shapeResult) {
	fmt.Fprintf(w, "\n== %s: %s, %d docs", s.Shape, s.Collection, s.Docs)
	if s.Docs != s.RequestedDocs {
		fmt.Fprintf(w, " (requested %d)", s.RequestedDocs)
	}
	fmt.Fprintf(w, ", %s source BSON (avg %.0f B/doc), %s of COPY rows\n", human(s.SourceBytes), s.AvgDocBytes, human(s.CopyBytes))
	fmt.Fprintf(w, "   %s\n", s.Note)
	if s.TableBytes > 0 {
		fmt.Fprintf(w, "   loaded table(s): %s on disk after (b)\n", human(s.TableBytes))
	}
	if s.CountNote != "" {
		fmt.Fprintf(w, "   NOTE: %s\n", s.CountNote)
	}
	width := len("measure")
	for _, m := range s.Measurements {
		width = max(width, len(m.What))
	}
	fmt.Fprintf(w, "   %-*s %10s %9s %9s  %-24s %s\n", width, "measure", "docs/s", "MB/s", "median s", "runs s", "")
	for _, m := range s.Measurements {
		runs := make([]string, len(m.RunsS))
		for i, r := range m.RunsS {
			runs[i] = fmt.Sprintf("%.2f", r)
		}
		extra := m.Extra
		if len(m.PeakRSSBytes) > 0 {
			mx := int64(0)
			for _, v := range m.PeakRSSBytes {
				mx = max(mx, v)
			}
			extra = strings.TrimSpace("peak RSS " + mib(mx) + "; " + extra)
			extra = strings.TrimSuffix(extra, ";")
		}
		if m.Label != "" {
			extra = strings.TrimSpace(extra + " [" + m.Label + "]")
		}
		fmt.Fprintf(w, "   %-*s %10.0f %9.1f %9.2f  %-24s %s\n", width, m.What, m.DocsPerS, m.MBPerS, m.MedianS, strings.Join(runs, " "), extra)
	}
	r := s.Ratios
	if s.get("b") != nil && r.LimitDocsPerS > 0 {
		fmt.Fprintf(w, "   (b)/(a) = %.2f   target >= %.1f: %s   (limit = %s)\n", r.BA, r.BATarget,
			verdict(r.BAMeets, "meets", "BELOW TARGET"), r.LimitFrom)
	}
	if r.BAPaired > 0 {
		fmt.Fprintf(w, "   (b)/(a) paired by run = %.2f   (for information: the median of each run's ratio, least moved by the host's drift)\n", r.BAPaired)
	}
	if r.BAAnalyze > 0 {
		fmt.Fprintf(w, "   (b)/(a + ANALYZE) = %.2f   (for information: (b) includes the ANALYZE cli.md requires, (a) does not)\n", r.BAAnalyze)
	}
	if r.BC > 0 {
		if r.BCTarget > 0 {
			fmt.Fprintf(w, "   (b)/(c) = %.1f   target >= %.0f: %s\n", r.BC, r.BCTarget, verdict(r.BCMeets, "meets", "BELOW TARGET"))
		} else {
			fmt.Fprintf(w, "   (b)/(c) = %.1f   (no target for the JSONB-kept shape: the naive path is disk-bound too)\n", r.BC)
		}
	}
	if r.FreshBA > 0 {
		fmt.Fprintf(w, "   fresh target: (b-fresh)/(a-fresh) = %.2f (same work on both sides)", r.FreshBA)
		if r.FreshBC > 0 {
			fmt.Fprintf(w, "; (b-fresh)/(c) = %.1f", r.FreshBC)
		}
		fmt.Fprintln(w)
	}
	if s.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "   peak RSS of bin/convert (b) = %s vs %s: %s\n", mib(s.PeakRSSBytes), mib(rssTarget),
			verdict(r.RSSMeets, "within", "ABOVE TARGET"))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "   note: %s\n", n)
	}
	if s.Profile != "" {
		fmt.Fprintf(w, "   CPU profile of an in-process run (%.1f s): %s  (go tool pprof -top %s)\n", s.ProfiledRunS, s.Profile, s.Profile)
	}
}

func printScale(w io.Writer, sc []*scaleResult) {
	if len(sc) == 0 {
		return
	}
	fmt.Fprintln(w, "\n== scale: bin/convert run from a dump across sizes")
	for _, s := range sc {
		parts := make([]string, len(s.Docs))
		for i := range s.Docs {
			parts[i] = fmt.Sprintf("%d docs (%s): peak RSS %s, %.1f s per 1M docs", s.Docs[i], human(s.SourceBytes[i]), mib(s.PeakRSSBytes[i]), s.SecPerMDoc[i])
		}
		flat := "flat (within ±20 %)"
		if !s.RSSFlat {
			flat = "NOT flat (beyond ±20 %)"
		}
		fmt.Fprintf(w, "   %s: %s\n     RSS largest/smallest = %.2f: %s; time per doc largest/smallest = %.2f\n",
			s.Shape, strings.Join(parts, "; "), s.RSSSpread, flat, s.TimeLinear)
	}
}

// writeResults writes the JSON crash-safe as <dir>/<stamp>.json and copies it to latest.json.
func writeResults(dir, stamp string, res *results) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	path := filepath.Join(dir, stamp+".json")
	for _, p := range []string{path, filepath.Join(dir, "latest.json")} {
		tmp, err := os.CreateTemp(dir, ".results-*")
		if err != nil {
			return "", err
		}
		_, werr := tmp.Write(b)
		if werr == nil {
			werr = tmp.Sync()
		}
		if cerr := tmp.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), p)
		}
		if werr != nil {
			os.Remove(tmp.Name())
			return "", werr
		}
	}
	return path, nil
}
