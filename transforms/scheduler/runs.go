package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// runs: Tier B, created within 180 days. schedule_id references schedules (a schedule's
// string _id, or null); stats_completed is generated from stats.completed and never written.
// The table is partitioned by month: Prepare creates the partitions the standing documents
// need before the first batch.
type runs struct {
	*collection
	// parents maps each loaded schedule's id to its tenant_id; read in Prepare, then only read.
	parents map[[16]byte]string
}

var (
	_ pipeline.Transform = (*runs)(nil)
	_ pipeline.Preparer  = (*runs)(nil)
)

func newRuns(env transforms.Env) pipeline.Transform {
	t := &runs{}
	t.collection = newCollection(env, Runs, runsTable, t.rows, nil)
	return t
}

// loadedSchedules reads the loaded schedules: complete before runs starts (Parents).
const loadedSchedules = `SELECT id::text, tenant_id FROM scheduler.schedules`

// Prepare implements pipeline.Preparer: it reads the loaded schedules, settles identity
// collisions among the standing runs, and creates the monthly partitions their created_at
// needs (idempotently: a resume or a verify runs it again).
func (t *runs) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	if kp.Query == nil {
		return errors.New("scheduler.runs: key pass without Query: cannot read the loaded schedules")
	}
	if kp.Exec == nil {
		return errors.New("scheduler.runs: key pass without Exec: cannot create the monthly partitions")
	}
	parents := map[[16]byte]string{}
	err := kp.Query(loadedSchedules, func(vals []*string) error {
		if len(vals) != 2 || vals[0] == nil || vals[1] == nil {
			return errors.New("scheduler.runs: reading schedules: unexpected row")
		}
		u, ok := transforms.ParseUUID(*vals[0])
		if !ok {
			return fmt.Errorf("scheduler.runs: reading schedules: id %q is no uuid", *vals[0])
		}
		parents[u] = *vals[1]
		return nil
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.parents = parents
	t.mu.Unlock()

	// A month needs its partition when one standing run falls in it. Once one has, the other
	// runs of that month have nothing to tell: they are not mapped in the key pass (unless
	// their _id could collide), which keeps the pass to a read of two fields per run.
	need := map[month]bool{}
	err = t.prepare(ctx, kp, &observer{
		wants: func(doc bson.Raw) bool {
			ms, ok := get(doc, "createdAt").DateTimeOK()
			return ok && !need[monthOf(ms)]
		},
		observe: func(doc bson.Raw) {
			// A standing run has a created_at PostgreSQL can store: the window kept it and
			// the value checks passed.
			if ms, ok := get(doc, "createdAt").DateTimeOK(); ok {
				need[monthOf(ms)] = true
			}
		},
	})
	if err != nil {
		return err
	}
	months := make([]month, 0, len(need))
	for m := range need {
		months = append(months, m)
	}
	slices.SortFunc(months, func(a, b month) int { return a.start().Compare(b.start()) })
	for _, m := range months {
		if err := kp.Exec(partitionDDL(m)); err != nil {
			return fmt.Errorf("scheduler.runs: create partition %s: %w", m.partition(), err)
		}
	}
	return nil
}

func (t *runs) rows(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	f := newFields(doc)
	r := transforms.NewRow(out, t.tables, 0, opt)
	r.UUID(t.rowID(canonical))
	r.Text(canonical, "_id")
	tenant := f.get("tenantId")
	r.Value(tenant, "tenantId")
	t.scheduleRef(r, tenant, f.get("scheduleId"), opt.FixStrings)
	field(r, f, "trigger")
	field(r, f, "state")
	stats := f.get("stats")
	r.Value(stats, "stats")
	if path, reason := checkStatsCompleted(stats); reason != "" {
		r.Fail(path, "column stats_completed: "+reason)
	}
	field(r, f, "reason")
	field(r, f, "deltas")
	field(r, f, "error")
	field(r, f, "createdAt")
	field(r, f, "startedAt")
	field(r, f, "finishedAt")
	return r.End()
}

// scheduleRef writes schedule_id: NULL for a null or missing scheduleId, else the id of the
// schedule it names (through the schedules id function), which must be loaded and of the
// run's tenant.
func (t *runs) scheduleRef(r *transforms.Row, tenant, ref bson.RawValue, fix bool) {
	if isNull(ref) {
		r.Null("scheduleId")
		return
	}
	parentID, canonical, err := transforms.RowID(t.ns, Schedules, ref)
	if err != nil {
		r.Fail("scheduleId", "column schedule_id: "+err.Error())
		return
	}
	t.mu.RLock()
	parentTenant, loaded := t.parents[parentID]
	t.mu.RUnlock()
	if !loaded {
		r.Fail("scheduleId", "missing parent "+Schedules+"/"+canonical)
		return
	}
	// When the run's own tenant_id is unusable the row has already failed on it.
	if own, ok := storedText(tenant, fix); ok && own != parentTenant {
		r.Fail("scheduleId", "cross-tenant reference "+Schedules+"/"+canonical)
		return
	}
	r.UUID(parentID)
}

// checkStatsCompleted tells whether PostgreSQL could compute stats_completed,
// (stats->>'completed')::int, from the stats the row stores, and if not why: such a row would be
// refused by the database, so the transform rejects it first with a reason that says what is
// wrong. NULL is fine (stats not a document, completed missing or null). A number passes when
// its jsonb text is an integer literal in integer's range (3.0 as a double is "3"; a decimal
// 3.0 keeps "3.0", which the cast refuses). Any other type rejects, strings included, even
// where the cast would read them ("12"): a count stored as text is not an integer, and what the
// cast accepts in a string differs between PostgreSQL versions (underscores, 0x prefixes).
func checkStatsCompleted(stats bson.RawValue) (path, reason string) {
	if stats.Type != bson.TypeEmbeddedDocument {
		return "", ""
	}
	v, err := stats.Document().LookupErr("completed")
	if err != nil || v.Type == bson.TypeNull {
		return "", ""
	}
	const path0 = "stats.completed"
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
	default:
		return path0, "not an integer (found " + transforms.TypeName(v.Type) + ")"
	}
	text, verr := transforms.AppendJSONBValue(nil, v, transforms.Options{})
	if verr != nil {
		return path0, "not an integer"
	}
	digits := text
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return path0, "not an integer"
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return path0, "not an integer"
		}
	}
	if _, err := strconv.ParseInt(string(text), 10, 32); err != nil {
		return path0, "value out of range for integer"
	}
	return "", ""
}

// month is a calendar month in UTC, year as Go counts it (0 is 1 BC).
type month struct {
	year int
	mon  time.Month
}

func monthOf(ms int64) month {
	t := time.UnixMilli(ms).UTC()
	return month{t.Year(), t.Month()}
}

func (m month) start() time.Time { return time.Date(m.year, m.mon, 1, 0, 0, 0, 0, time.UTC) }

func (m month) next() month {
	if m.mon == time.December {
		return month{m.year + 1, time.January}
	}
	return month{m.year, m.mon + 1}
}

// partition is the month's partition name, runs_yYYYYmMM (runs_yYYYYbcmMM before year 1).
func (m month) partition() string {
	if m.year < 1 {
		return fmt.Sprintf("runs_y%04dbcm%02d", 1-m.year, int(m.mon))
	}
	return fmt.Sprintf("runs_y%04dm%02d", m.year, int(m.mon))
}

// PostgreSQL's timestamptz range: 4714-11-24 00:00 BC up to, not including, 294277-01-01.
var (
	pgMinTimestamp = time.Date(-4713, time.November, 24, 0, 0, 0, 0, time.UTC)
	pgEndTimestamp = time.Date(294277, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// bound is the month's start as a partition bound: a UTC timestamptz literal with an explicit
// +00, or MINVALUE/MAXVALUE where the month starts outside PostgreSQL's range (the first and
// last months it can store).
func (m month) bound() string {
	t := m.start()
	switch {
	case t.Before(pgMinTimestamp):
		return "MINVALUE"
	case !t.Before(pgEndTimestamp):
		return "MAXVALUE"
	case m.year < 1:
		return fmt.Sprintf("'%04d-%02d-01 00:00:00+00 BC'", 1-m.year, int(m.mon))
	}
	return fmt.Sprintf("'%04d-%02d-01 00:00:00+00'", m.year, int(m.mon))
}

// partitionDDL creates the month's partition of scheduler.runs unless it exists.
func partitionDDL(m month) string {
	return "CREATE TABLE IF NOT EXISTS " + pipeline.QuoteIdent(Schema) + "." + pipeline.QuoteIdent(m.partition()) +
		" PARTITION OF " + runsTable.Ident() + " FOR VALUES FROM (" + m.bound() + ") TO (" + m.next().bound() + ")"
}
