package consumers_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/maintenance"
)

const recovered = "Recovered: worker lease expired"

// sweepFast scans every 20ms and recovers a job 200ms after its lease expired.
func sweepFast(c *testpipeline.Setup) {
	c.Maintenance.Sweeper.Interval = 20 * time.Millisecond
	c.Maintenance.Sweeper.Grace = 200 * time.Millisecond
}

// seedStuck seeds a job as a worker that died while designing leaves it once its
// ticket is gone: running, under a lease that expired a second ago.
func (e *env) seedStuck(id string) {
	e.t.Helper()
	e.seedJob(&events.Job{ID: id, Status: events.StatusRunning, CurrentStep: events.StepDesign,
		Stage: events.StageDesign, Seq: 1, Lease: &events.Lease{Owner: "dead-worker", ExpiresAt: time.Now().Add(-time.Second)}})
}

// sweptAgain waits for a sweeper pass that ends after it is called, over every
// job seeded before: it seeds a stuck job of its own, waits until a pass has
// recovered it and it completed, then until JOBS holds only n messages.
func (e *env) sweptAgain(n uint64) {
	e.t.Helper()
	marker := uuid.NewString()
	e.seedStuck(marker)
	e.waitStatus(marker, events.StatusCompleted)
	e.fx.WaitTickets(e.t, n)
}

func count(evs []events.StatusEvent, ok func(events.StatusEvent) bool) int {
	n := 0
	for _, ev := range evs {
		if ok(ev) {
			n++
		}
	}
	return n
}

func isRecovered(ev events.StatusEvent) bool { return ev.Message == recovered }

func isCompleted(ev events.StatusEvent) bool { return ev.Status == events.StatusCompleted }

func TestSweeperRecoversStuckJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""), sweepFast)
	id := uuid.NewString()
	// The hand-off's ticket was published moments ago (inside the duplicates
	// window) and is gone; the recovery must still deliver a ticket.
	original := events.Ticket{JobID: id, Stage: events.StageDesign, Seq: 1}
	e.ticket(original, original.MsgID())
	waitEmpty(t, e)
	e.seedStuck(id)
	evs := e.waitStatus(id, events.StatusCompleted)
	if first := evs[0]; first.Status != events.StatusPending || first.Step != events.StepDesign || first.Message != recovered {
		t.Fatalf("first event %s/%s %q, want pending/design %q:%s", first.Status, first.Step, first.Message, recovered, describe(evs))
	}
	if r, c := count(evs, isRecovered), count(evs, isCompleted); r != 1 || c != 1 {
		t.Fatalf("%d recovered and %d completed events, want 1 each:%s", r, c, describe(evs))
	}
	// The dead worker's ticket, delivered late, is stale: it changes nothing.
	e.ticket(original, "dead-worker-ticket")
	e.waitIdle()
	if n := len(e.eventsOf(id)); n != len(evs) {
		t.Fatalf("the old ticket changed the job: %d events, want %d:%s", n, len(evs), describe(e.eventsOf(id)))
	}
	if n := e.llm.CallsFor("design"); n != 1 {
		t.Fatalf("%d design calls, want 1", n)
	}
	if n := testutil.ToFloat64(e.metrics.JobsRecovered.WithLabelValues("design")); n != 1 {
		t.Fatalf("jobs_recovered_total{design} = %v, want 1", n)
	}
	waitEmpty(t, e)
}

// Only a running job whose lease expired more than the grace ago is recovered,
// even when the others still carry an old expired lease; waiting jobs are left
// alone while their stage holds a live ticket on any of its queues (here the
// leased job's, retried until its lease ends in an hour), since theirs may be
// queued behind it.
func TestSweeperLeavesOtherJobsAlone(t *testing.T) {
	t.Parallel()
	// The jobs are stored before any sweeper runs: a first pass that lists the
	// active index before a job is created and then reads it indexes it again
	// (a write that changes no state, but a revision).
	e := newIdleEnv(t, broker.Resources{}, steps("outline", goodLatex, ""), sweepFast)
	expired := &events.Lease{Owner: "old-worker", ExpiresAt: time.Now().Add(-time.Minute)}
	tests := []struct {
		name   string
		status events.Status
		lease  *events.Lease
	}{
		{"running under a live lease", events.StatusRunning, &events.Lease{Owner: "slow-worker", ExpiresAt: time.Now().Add(time.Hour)}},
		{"pending behind a live ticket", events.StatusPending, expired},
		{"error behind a live ticket", events.StatusError, expired},
		{"waiting_ai_fix behind a live ticket", events.StatusWaitingAIFix, expired},
		{"completed", events.StatusCompleted, expired},
		{"aborted", events.StatusAborted, expired},
		{"waiting_manual", events.StatusWaitingManual, expired},
	}
	revs := map[string]uint64{}
	ids := map[string]string{}
	for _, tc := range tests {
		id := uuid.NewString()
		e.seedJob(&events.Job{ID: id, Status: tc.status, CurrentStep: events.StepDesign,
			Stage: events.StageDesign, Seq: 1, Lease: tc.lease})
		_, rev, err := e.store.Get(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ids[tc.name], revs[tc.name] = id, rev
	}
	// The live ticket waits on the high queue: the stage is busy although its
	// normal queue is empty.
	e.ticketOn(events.Queue{Stage: events.StageDesign, Priority: events.PriorityHigh},
		events.Ticket{JobID: ids["running under a live lease"], Stage: events.StageDesign, Seq: 1}, "live")
	kv, err := e.nats.JS.KeyValue(e.ctx, kvstore.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(e.ctx, uuid.NewString(), []byte("{not a job")); err != nil {
		t.Fatal(err)
	}
	e.pipe = e.startPipeline()
	stuck := uuid.NewString()
	e.seedStuck(stuck) // passes over the undecodable value still reach it
	e.waitStatus(stuck, events.StatusCompleted)
	e.sweptAgain(1) // the live ticket stays
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := ids[tc.name]
			if evs := e.eventsOf(id); len(evs) != 0 {
				t.Fatalf("the sweeper changed a %s job:%s", tc.status, describe(evs))
			}
			if _, rev, err := e.store.Get(e.ctx, id); err != nil || rev != revs[tc.name] {
				t.Fatalf("revision %d (err %v), want %d unchanged", rev, err, revs[tc.name])
			}
		})
	}
}

// Several processes sweep at once; each stuck job is recovered by exactly one.
func TestConcurrentSweepersRecoverOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""), sweepFast)
	for range 3 {
		e.startPipeline()
	}
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = uuid.NewString()
		e.seedStuck(ids[i])
	}
	for _, id := range ids {
		e.waitStatus(id, events.StatusCompleted)
	}
	e.waitIdle()
	for _, id := range ids {
		evs := e.eventsOf(id)
		if r, c := count(evs, isRecovered), count(evs, isCompleted); r != 1 || c != 1 {
			t.Fatalf("job %s: %d recovered and %d completed events, want 1 each:%s", id, r, c, describe(evs))
		}
	}
	if n := e.llm.CallsFor("design"); n != len(ids) {
		t.Fatalf("%d design calls for %d jobs", n, len(ids))
	}
}

// A job waiting for a ticket its stage does not hold (lost after the job was
// written) is handed back under a new sequence once idle past the grace.
func TestSweeperRescuesJobsWhoseTicketWasLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, goodLatex), sweepFast)
	tests := []struct {
		name string
		job  events.Job
	}{
		{"pending", events.Job{Status: events.StatusPending, CurrentStep: events.StepLatex, Stage: events.StageLatex,
			Seq: 2, Design: "outline"}},
		{"error past its back-off", events.Job{Status: events.StatusError, CurrentStep: events.StepDesign,
			Stage: events.StageDesign, Seq: 1, RetryCount: 1, ErrorMessage: "design failed: 503"}},
		{"waiting_ai_fix", events.Job{Status: events.StatusWaitingAIFix, CurrentStep: events.StepCompile,
			Stage: events.StageFix, Seq: 3, Design: "outline", Latex: brokenLatex, ErrorMessage: "Undefined control sequence.",
			ErrorLog: &events.ErrorLog{Log: "log", Snippet: "l.5 \\notacommand", Line: 5}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			j := tc.job
			j.ID = id
			e.seedJob(&j)
			evs := e.waitStatus(id, events.StatusCompleted)
			if evs[0].Message != "Recovered: ticket lost" || evs[0].Status == events.StatusRunning {
				t.Fatalf("first event %s %q, want the recovery:%s", evs[0].Status, evs[0].Message, describe(evs))
			}
			e.waitIdle()
			evs = e.eventsOf(id)
			if r, c := count(evs, func(ev events.StatusEvent) bool { return ev.Message == "Recovered: ticket lost" }), count(evs, isCompleted); r != 1 || c != 1 {
				t.Fatalf("%d recoveries and %d completed events, want 1 each:%s", r, c, describe(evs))
			}
		})
	}
}

// activeRecords is the active index: job id -> record revision.
func (e *env) activeRecords() map[string]uint64 {
	e.t.Helper()
	got := map[string]uint64{}
	if err := e.store.EachActive(e.ctx, func(r kvstore.ActiveRecord) error { got[r.ID] = r.Rev; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return got
}

// A stuck job written before the active index existed (it has no record) is
// found by a sweeper's first pass, which reads every unfinished job and indexes
// it, and recovered.
func TestSweeperIndexesJobsFromBeforeTheIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""), sweepFast)
	id := uuid.NewString()
	e.seedStuck(id)
	if err := e.store.Deactivate(e.ctx, id, e.job(id).ActiveRev); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.activeRecords()[id]; ok {
		t.Fatal("the record was not removed")
	}
	e.startPipeline() // a sheetd started after the upgrade
	e.waitStatus(id, events.StatusCompleted)
	waitUntil(t, "the completed job's record removed", func() bool {
		_, ok := e.activeRecords()[id]
		return !ok
	})
}

// A record left for a job that has no stage any more (its writer died before
// removing it) is removed by the sweeper.
func TestSweeperRemovesRecordsOfSettledJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""), sweepFast)
	id := uuid.NewString()
	e.seedJob(&events.Job{ID: id, Status: events.StatusCompleted, CurrentStep: events.StepDone})
	rev, err := e.store.Activate(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.Update(e.ctx, id, func(j *events.Job) error { j.ActiveRev = rev; return nil }); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the settled job's record removed", func() bool {
		_, ok := e.activeRecords()[id]
		return !ok
	})
	if j := e.job(id); j.Status != events.StatusCompleted {
		t.Fatalf("the sweeper changed a completed job: %s", j.Status)
	}
}

// parkedLeavesActive checks that job id, parked for a human, left the active
// index with its write: its value is not active, its record goes, and the
// sweeper's scan no longer reads it.
func parkedLeavesActive(e *env, id string) {
	e.t.Helper()
	if j := e.job(id); j.Status != events.StatusWaitingManual || j.Active() || j.Stage != "" {
		e.t.Fatalf("parked job is %s with stage %q, blocked %v: still active", j.Status, j.Stage, j.Blocked)
	}
	waitUntil(e.t, "the parked job's record removed from the active index", func() bool {
		_, ok := e.activeRecords()[id]
		return !ok
	})
	read, err := maintenance.NewSweeper(e.fx.Setup().Maintenance.Sweeper, e.fx.MaintenanceDeps()).Reads(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if slices.Contains(read, id) {
		e.t.Fatalf("the sweeper still reads parked job %s", id)
	}
}
