package concelier

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

// TestModuleShape: the module's identity, load order, tiers, parents and change fields are
// modules.md's, and each collection's transform writes the tables the collection declares.
func TestModuleShape(t *testing.T) {
	m := Module()
	if m.Name != "concelier" || m.Schema != "vuln" || m.DB != "concelier" || m.Version != "concelier/1" || len(m.Migrations) == 0 {
		t.Fatalf("module: %+v", m)
	}
	type want struct {
		name, tier, change string
		parents            []string
		tables             string
	}
	wants := []want{
		{"source", "A", "updatedAt", nil, "vuln.sources"},
		{"source_state", "A", "updatedAt", []string{"source"}, "vuln.source_states"},
		{"advisory", "A", "modifiedAt", []string{"source"}, "vuln.advisories,vuln.advisory_cvss,vuln.advisory_references,vuln.advisory_credits,vuln.advisory_weaknesses"},
		{"alias", "A", "", []string{"advisory"}, "vuln.advisory_aliases"},
		{"affected", "A", "", []string{"advisory"}, "vuln.advisory_affected"},
		{"advisory_raw", "B", "upstream.received_at", nil, "vuln.advisory_snapshots"},
		{"jobs", "C", "", nil, "vuln.jobs"},
		{"locks", "C", "", nil, "vuln.locks"},
	}
	if len(m.Collections) != len(wants) {
		t.Fatalf("%d collections, want %d", len(m.Collections), len(wants))
	}
	for i, w := range wants {
		c := m.Collections[i]
		if c.Name != w.name || c.Tier.Name != w.tier || c.ChangeField != w.change || strings.Join(c.Parents, ",") != strings.Join(w.parents, ",") {
			t.Errorf("collection %d: %s tier %s change %q parents %v; want %+v", i, c.Name, c.Tier.Name, c.ChangeField, c.Parents, w)
		}
		if got := names(c.Tables); got != w.tables {
			t.Errorf("%s declares %s, want %s", c.Name, got, w.tables)
		}
		tr := c.New(transforms.Env{Module: Name, Collection: c.Name, Filter: c.Tier.Bind(asOf)})
		if got := names(tr.Tables()); got != w.tables {
			t.Errorf("%s transform writes %s, want %s", c.Name, got, w.tables)
		}
		if _, ok := tr.(pipeline.Preparer); ok != (w.tier != "C") {
			t.Errorf("%s: Preparer %v", c.Name, ok)
		}
	}
	// advisory_raw: Tier B that skips nothing, and says why.
	f := m.Collections[5].Tier.Bind(asOf)
	var d map[string]any
	if err := json.Unmarshal(f.Describe(), &d); err != nil || d["tier"] != "B" || d["note"] != "GridFS refs only: blobs are not copied" || tiers.Days(m.Collections[5].Tier) != 0 {
		t.Fatalf("advisory_raw filter: %s %v", f.Describe(), err)
	}
	// Jobs binds every collection; the generated search column is never written.
	jobs, err := m.Jobs(asOf, transforms.Options{}, transforms.Override{}, nil)
	if err != nil || len(jobs) != len(wants) || jobs[0].NS.DB != "concelier" || jobs[2].Name != "concelier.advisory" {
		t.Fatalf("jobs: %v %+v", err, jobs)
	}
	for _, tb := range m.Tables() {
		for _, c := range tb.Columns {
			if c.Type == pipeline.TypeTSVector && c.Generated == "" {
				t.Errorf("%s.%s: tsvector must be generated", tb.FullName(), c.Name)
			}
		}
	}
}

func names(tbs []pipeline.Table) string {
	var s []string
	for _, t := range tbs {
		s = append(s, t.FullName())
	}
	return strings.Join(s, ",")
}
