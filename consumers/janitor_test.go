package consumers_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/maintenance"
)

const day = 24 * time.Hour

// retain keeps finished jobs for d; the background janitor and sweeper wait an
// hour, so only the passes a test runs itself act.
func retain(d time.Duration) envOption {
	return func(c *testpipeline.Setup) {
		c.Maintenance.Janitor.Retention = &d
		c.Maintenance.Janitor.Interval = time.Hour
		c.Maintenance.Sweeper.Interval = time.Hour
	}
}

// quietSweeper leaves seeded jobs to the janitor under the default retention.
func quietSweeper(c *testpipeline.Setup) {
	c.Maintenance.Janitor.Interval = time.Hour
	c.Maintenance.Sweeper.Interval = time.Hour
}

// seedAged stores a job last changed at updated (written to the bucket directly,
// since the store stamps every write with the current time), with a
// conversation and a PDF.
func (e *env) seedAged(j *events.Job, updated time.Time) {
	e.t.Helper()
	j.UserID, j.Prompt, j.Mode, j.MaxRetries, j.ConversationID = "u", "fractions", events.ModeAuto, 3, j.ID
	j.CreatedAt, j.UpdatedAt = updated.Add(-time.Minute), updated
	data, err := json.Marshal(j)
	if err != nil {
		e.t.Fatal(err)
	}
	kv, err := e.nats.JS.KeyValue(e.ctx, kvstore.BucketJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	// Conversation and PDF first: a janitor running meanwhile that deletes the
	// job deletes them with it, where a PDF stored after the job's deletion
	// would stay behind as a young orphan.
	e.seedConversation(j.ID)
	e.seedPDF(j.ID)
	if _, err := kv.Create(e.ctx, j.ID, data); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) seedConversation(id string) {
	e.t.Helper()
	_, _, err := e.store.Converse(e.ctx, id, id, func(c *events.Conversation) error {
		c.Messages = append(c.Messages, events.Message{Role: "user", Content: "fractions", Time: time.Now()})
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) seedPDF(id string) {
	e.t.Helper()
	obs, err := e.nats.JS.ObjectStore(e.ctx, broker.BucketPDFs)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := obs.PutBytes(e.ctx, id+".pdf", []byte("%PDF-1.4 seeded")); err != nil {
		e.t.Fatal(err)
	}
}

// stored reports which of job id, its conversation and its PDF exist.
func (e *env) stored(id string) (job, conv, pdf bool) {
	e.t.Helper()
	present := func(err error, gone error) bool {
		if err != nil && !errors.Is(err, gone) {
			e.t.Fatalf("read %s: %v", id, err)
		}
		return err == nil
	}
	_, _, err := e.store.Get(e.ctx, id)
	job = present(err, kvstore.ErrNotFound)
	_, _, err = e.store.Conversation(e.ctx, id)
	conv = present(err, kvstore.ErrNotFound)
	obs, err := e.nats.JS.ObjectStore(e.ctx, broker.BucketPDFs)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = obs.GetInfo(e.ctx, id+".pdf")
	pdf = present(err, jetstream.ErrObjectNotFound)
	return job, conv, pdf
}

func (e *env) requireAll(id string, want bool) {
	e.t.Helper()
	if job, conv, pdf := e.stored(id); job != want || conv != want || pdf != want {
		e.t.Fatalf("job %s: job %v, conversation %v, pdf %v stored; want all %v", id, job, conv, pdf, want)
	}
}

// olderThan waits until d has passed since t, the age the janitor looks for.
func olderThan(t time.Time, d time.Duration) {
	time.Sleep(time.Until(t.Add(d + 10*time.Millisecond)))
}

func (e *env) deletedTotal() float64 { return testutil.ToFloat64(e.metrics.JobsDeleted) }

// A job that ran through the whole pipeline and then stayed untouched for the
// retention goes, with its conversation and PDF, and the API no longer knows it.
func TestJanitorDeletesExpiredJobWithConversationAndPDF(t *testing.T) {
	t.Parallel()
	const retention = 300 * time.Millisecond
	e := newEnv(t, steps("outline", goodLatex, ""), retain(retention))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	e.waitStatus(id, events.StatusCompleted)
	e.requireAll(id, true)
	olderThan(e.job(id).UpdatedAt, retention)

	jobs, convs, pdfs, err := e.janitor().Pass(e.ctx)
	if err != nil || jobs != 1 || convs != 0 || pdfs != 0 {
		t.Fatalf("pass deleted %d jobs, %d orphan conversations, %d orphan pdfs (err %v); want 1, 0, 0", jobs, convs, pdfs, err)
	}
	e.requireAll(id, false)
	if _, _, err := e.plane.Get(e.ctx, id); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("Get after deletion: %v, want not found", err)
	}
	if _, err := e.plane.PDF(e.ctx, id); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("PDF after deletion: %v, want not found", err)
	}
	if n := e.deletedTotal(); n != 1 {
		t.Fatalf("jobs_deleted_total = %v, want 1", n)
	}
	// Once the deletion is older than the retention too, its markers go: the
	// buckets hold nothing of the job.
	olderThan(time.Now(), retention)
	if jobs, convs, pdfs, err := e.janitor().Pass(e.ctx); err != nil || jobs+convs+pdfs != 0 {
		t.Fatalf("second pass deleted %d+%d+%d (err %v), want nothing", jobs, convs, pdfs, err)
	}
	for _, bucket := range []string{kvstore.BucketJobs, kvstore.BucketConversations} {
		s, err := e.nats.JS.Stream(e.ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			t.Errorf("bucket %s keeps %d messages after the deletion, want 0", bucket, info.State.Msgs)
		}
	}
}

// Under the default retention (30 days) only finished jobs untouched for longer
// go; a job any stage may still act on stays, whatever its age.
func TestJanitorDeletesOnlyFinishedExpiredJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""), quietSweeper)
	now := time.Now()
	old, recent := now.Add(-31*day), now.Add(-29*day)
	deadLease := &events.Lease{Owner: "dead-worker", ExpiresAt: old}
	tests := []struct {
		name    string
		status  events.Status
		step    events.Step
		updated time.Time
		lease   *events.Lease
		deleted bool
	}{
		{"completed 31 days ago", events.StatusCompleted, events.StepDone, old, nil, true},
		{"aborted 31 days ago", events.StatusAborted, events.StepLatex, old, nil, true},
		{"waiting_manual 31 days ago", events.StatusWaitingManual, events.StepCompile, old, nil, true},
		{"invalid request 31 days ago", events.StatusError, events.StepPrompt, old, nil, true},
		{"completed 29 days ago", events.StatusCompleted, events.StepDone, recent, nil, false},
		{"waiting_manual 29 days ago", events.StatusWaitingManual, events.StepCompile, recent, nil, false},
		{"running 31 days ago", events.StatusRunning, events.StepDesign, old, deadLease, false},
		{"pending 31 days ago", events.StatusPending, events.StepLatex, old, nil, false},
		{"error with retry 31 days ago", events.StatusError, events.StepDesign, old, nil, false},
		{"waiting_ai_fix 31 days ago", events.StatusWaitingAIFix, events.StepCompile, old, nil, false},
	}
	ids := map[string]string{}
	revs := map[string]uint64{}
	want := 0
	for _, tc := range tests {
		id := uuid.NewString()
		e.seedAged(&events.Job{ID: id, Status: tc.status, CurrentStep: tc.step,
			Stage: events.StageDesign, Seq: 1, Lease: tc.lease}, tc.updated)
		_, rev, err := e.store.Get(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ids[tc.name], revs[tc.name] = id, rev
		if tc.deleted {
			want++
		}
	}
	// A conversation and a PDF without a job, but written just now, are kept too.
	fresh := uuid.NewString()
	e.seedConversation(fresh)
	e.seedPDF(fresh)

	jobs, convs, pdfs, err := e.janitor().Pass(e.ctx)
	if err != nil || jobs != want || convs != 0 || pdfs != 0 {
		t.Fatalf("pass deleted %d jobs, %d orphan conversations, %d orphan pdfs (err %v); want %d, 0, 0", jobs, convs, pdfs, err, want)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := ids[tc.name]
			e.requireAll(id, !tc.deleted)
			if tc.deleted {
				return
			}
			if _, rev, err := e.store.Get(e.ctx, id); err != nil || rev != revs[tc.name] {
				t.Fatalf("revision %d (err %v), want %d unchanged", rev, err, revs[tc.name])
			}
		})
	}
	if _, conv, pdf := e.stored(fresh); !conv || !pdf {
		t.Fatalf("fresh conversation %v and pdf %v without a job, want both kept", conv, pdf)
	}
}

// A user who retries or refines an expired job after the janitor's scan keeps
// it: the deletion carries the revision the scan read and is refused.
func TestJanitorKeepsJobChangedAfterScan(t *testing.T) {
	t.Parallel()
	h := fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
		"refine": fakellm.Script(fakellm.Reply{Content: "fractions with pictures"}),
	})
	e := newEnv(t, h, quietSweeper)
	tests := []struct {
		name   string
		status events.Status
		act    func(id string) error
	}{
		{"retry of waiting_manual", events.StatusWaitingManual, func(id string) error {
			_, err := e.plane.Retry(e.ctx, events.JobChange{JobID: id})
			return err
		}},
		{"refine of completed", events.StatusCompleted, func(id string) error {
			_, err := e.plane.Refine(e.ctx, events.Refinement{JobID: id, Instruction: "add pictures"})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			e.seedAged(&events.Job{ID: id, Status: tc.status, CurrentStep: events.StepDesign,
				Stage: events.StageDesign, Seq: 1, Latex: goodLatex}, time.Now().Add(-40*day))
			read, scanned, err := e.store.Get(e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.act(id); err != nil {
				t.Fatal(err)
			}
			deleted, err := e.janitor().Expire(e.ctx, read, scanned)
			if err != nil || deleted {
				t.Fatalf("deletion at the scanned revision: deleted %v, err %v; want kept without error", deleted, err)
			}
			e.requireAll(id, true)
			e.waitStatus(id, events.StatusCompleted)
			if jobs, _, _, err := e.janitor().Pass(e.ctx); err != nil || jobs != 0 {
				t.Fatalf("pass after the user's change deleted %d jobs (err %v), want 0", jobs, err)
			}
			e.requireAll(id, true)
		})
	}
	if n := e.deletedTotal(); n != 0 {
		t.Fatalf("jobs_deleted_total = %v, want 0", n)
	}
}

// Two processes' janitors racing over the same expired jobs delete each exactly
// once, and neither reports an error.
func TestConcurrentJanitorsDeleteEachJobOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""), quietSweeper)
	e.startPipeline()
	janitors := []*maintenance.Janitor{e.janitor(), e.janitor()}
	ids := make([]string, 20)
	read := make([]*events.Job, len(ids))
	revs := make([]uint64, len(ids))
	for i := range ids {
		ids[i] = uuid.NewString()
		e.seedAged(&events.Job{ID: ids[i], Status: events.StatusCompleted, CurrentStep: events.StepDone}, time.Now().Add(-40*day))
		j, rev, err := e.store.Get(e.ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		read[i], revs[i] = j, rev
	}
	const rounds = 3
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for _, jn := range janitors {
		wg.Go(func() {
			<-start
			for range rounds {
				jobs, _, _, err := jn.Pass(e.ctx)
				if err != nil {
					t.Errorf("janitor pass: %v", err)
				}
				mu.Lock()
				total += jobs
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if total != len(ids) {
		t.Fatalf("janitors deleted %d jobs, want %d (each once)", total, len(ids))
	}
	if n := e.deletedTotal(); n != float64(len(ids)) {
		t.Fatalf("jobs_deleted_total = %v, want %d", n, len(ids))
	}
	for _, id := range ids {
		e.requireAll(id, false)
	}
	// A janitor that read a job before another deleted it finds it gone, and
	// leaves it without an error.
	for i, id := range ids {
		if deleted, err := janitors[i%2].Expire(e.ctx, read[i], revs[i]); err != nil || deleted {
			t.Fatalf("late deletion of job %s: deleted %v, err %v; want neither", id, deleted, err)
		}
	}
	if n := e.deletedTotal(); n != float64(len(ids)) {
		t.Fatalf("jobs_deleted_total = %v after late deletions, want %d", n, len(ids))
	}
}

// A crash between deleting a job and its conversation or PDF leaves them
// without a job; the janitor removes them once older than the retention, and
// keeps a live job's, however old.
func TestJanitorRemovesOrphans(t *testing.T) {
	t.Parallel()
	const retention = 300 * time.Millisecond
	e := newEnv(t, steps("outline", goodLatex, ""), retain(retention))
	orphan, live := uuid.NewString(), uuid.NewString()
	e.seedConversation(orphan)
	e.seedPDF(orphan)
	e.seedAged(&events.Job{ID: live, Status: events.StatusRunning, CurrentStep: events.StepDesign,
		Stage: events.StageDesign, Seq: 1}, time.Now().Add(-40*day))
	olderThan(time.Now(), retention)

	jobs, convs, pdfs, err := e.janitor().Pass(e.ctx)
	if err != nil || jobs != 0 || convs != 1 || pdfs != 1 {
		t.Fatalf("pass deleted %d jobs, %d orphan conversations, %d orphan pdfs (err %v); want 0, 1, 1", jobs, convs, pdfs, err)
	}
	if _, conv, pdf := e.stored(orphan); conv || pdf {
		t.Fatalf("orphan conversation %v, pdf %v still stored", conv, pdf)
	}
	e.requireAll(live, true)
}

// Retention 0 keeps everything: no janitor runs, however often it would.
func TestJanitorDisabledByZeroRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""), func(c *testpipeline.Setup) {
		var keep time.Duration
		c.Maintenance.Janitor.Retention = &keep
		c.Maintenance.Janitor.Interval = 10 * time.Millisecond
		c.Maintenance.Sweeper.Interval = time.Hour
	})
	id := uuid.NewString()
	e.seedAged(&events.Job{ID: id, Status: events.StatusCompleted, CurrentStep: events.StepDone}, time.Now().Add(-400*day))
	// No event to await: a janitor that never runs leaves no trace. The window
	// spans about 50 of the intervals it would run at.
	time.Sleep(500 * time.Millisecond)
	e.requireAll(id, true)
}

// Started with the pipeline, the janitor deletes expired jobs on its own and
// leaves running ones.
func TestJanitorRunsWithThePipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""), func(c *testpipeline.Setup) {
		c.Maintenance.Janitor.Interval = 20 * time.Millisecond
		c.Maintenance.Sweeper.Interval = time.Hour
	})
	done, running := uuid.NewString(), uuid.NewString()
	e.seedAged(&events.Job{ID: done, Status: events.StatusCompleted, CurrentStep: events.StepDone}, time.Now().Add(-40*day))
	e.seedAged(&events.Job{ID: running, Status: events.StatusRunning, CurrentStep: events.StepLatex,
		Stage: events.StageLatex, Seq: 2}, time.Now().Add(-40*day))
	deadline := time.Now().Add(30 * time.Second)
	for job, _, _ := e.stored(done); job; job, _, _ = e.stored(done) {
		if time.Now().After(deadline) {
			t.Fatal("expired job not deleted within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A job expired like done, seeded now: once it is gone, a later pass has
	// scanned running and done again.
	later := uuid.NewString()
	e.seedAged(&events.Job{ID: later, Status: events.StatusCompleted, CurrentStep: events.StepDone}, time.Now().Add(-40*day))
	for job, conv, pdf := e.stored(later); job || conv || pdf; job, conv, pdf = e.stored(later) {
		if time.Now().After(deadline) {
			t.Fatal("second expired job not deleted with its conversation and PDF within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.requireAll(done, false)
	e.requireAll(running, true)
	if n := e.deletedTotal(); n != 2 {
		t.Fatalf("jobs_deleted_total = %v, want 2 (done and later, once each)", n)
	}
}
