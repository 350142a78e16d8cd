package lifecycle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// recorder is a Publisher that keeps what it was asked to publish.
type recorder struct {
	mu   sync.Mutex
	msgs []string // subject of each
}

func (r *recorder) Publish(_ context.Context, subject string, _ []byte, _ string, _ bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, subject)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func setup(t *testing.T) (*Executor, *recorder, context.Context) {
	t.Helper()
	t.Parallel()
	s := testnats.Provisioned(t, broker.Resources{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	st, err := kvstore.New(ctx, s.JS, nil)
	if err != nil {
		t.Fatalf("kvstore.New: %v", err)
	}
	rec := &recorder{}
	return NewExecutor(st, rec, nil, nil), rec, ctx
}

// create stores a new, valid job through the executor and returns its id.
func create(t *testing.T, x *Executor, ctx context.Context) (string, uint64) {
	t.Helper()
	j := &events.Job{ID: uuid.NewString(), UserID: "u", Prompt: "fractions", MaxRetries: 3}
	Accept(j)
	rev, err := x.Create(ctx, j)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return j.ID, rev
}

// A transition whose result the table does not allow from the job's status is
// refused with an *IllegalError: nothing is written, nothing published.
func TestApplyRefusesWhatTheTableDoesNot(t *testing.T) {
	x, rec, ctx := setup(t)
	id, rev := create(t, x, ctx)
	// "complete" is legal from running only; this one completes a pending job.
	bogus := Transition{specComplete, func(j *events.Job, _ time.Time) error {
		j.Status = events.StatusCompleted
		return nil
	}}
	_, _, err := x.Apply(ctx, id, bogus)
	var ie *IllegalError
	if !errors.As(err, &ie) || !errors.Is(err, ErrIllegal) || ie.From != events.StatusPending || ie.To != events.StatusCompleted {
		t.Fatalf("apply: %v, want an illegal transition from pending to completed", err)
	}
	j, now, err := x.Store().Get(ctx, id)
	if err != nil || now != rev || j.Status != events.StatusPending {
		t.Fatalf("job after a refused write: %v, revision %d (was %d), status %s", err, now, rev, j.Status)
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("%d messages published for a refused write", n)
	}

	// A write that changes no state may not change the status either.
	quietBogus := Transition{specDescribe, func(j *events.Job, _ time.Time) error {
		j.Status = events.StatusAborted
		return nil
	}}
	if _, _, err := x.Apply(ctx, id, quietBogus); !errors.Is(err, ErrIllegal) {
		t.Fatalf("a describe that aborts: %v, want ErrIllegal", err)
	}
	// And a job is created only in a status the table starts jobs in.
	running := &events.Job{ID: uuid.NewString(), Status: events.StatusRunning}
	if _, err := x.Create(ctx, running); !errors.Is(err, ErrIllegal) {
		t.Fatalf("create running: %v, want ErrIllegal", err)
	}
}

// A legal transition is one write and one event; a write that changes no
// state (a lease renewal, a description) publishes none, and a description
// keeps the revision of the last event for a re-emit.
func TestApplyWritesAndAnnounces(t *testing.T) {
	x, rec, ctx := setup(t)
	id, created := create(t, x, ctx)
	tk := events.Ticket{JobID: id, Stage: events.StageDesign, Seq: 1}
	j, claimed, err := x.Apply(ctx, id, Claim(tk, "w1", time.Minute, "Generating design"))
	if err != nil || j.Status != events.StatusRunning || claimed <= created || rec.count() != 1 {
		t.Fatalf("claim: %v, status %s, revision %d after %d, %d published", err, j.Status, claimed, created, rec.count())
	}
	// A second claim of the same ticket meets a live lease.
	var le *LeasedError
	if _, _, err := x.Apply(ctx, id, Claim(tk, "w2", time.Minute, "")); !errors.As(err, &le) {
		t.Fatalf("second claim: %v, want a *LeasedError", err)
	}
	if _, _, err := x.Apply(ctx, id, Renew("w1", time.Now().Add(time.Minute))); err != nil || rec.count() != 1 {
		t.Fatalf("renew: %v, %d published", err, rec.count())
	}
	if _, _, err := x.Apply(ctx, id, Renew("w2", time.Now())); !errors.Is(err, ErrLost) {
		t.Fatalf("renew by a worker without the lease: %v, want ErrLost", err)
	}
	j, rev, err := x.Apply(ctx, id, Designed("w1", "fractions", "outline"))
	if err != nil || j.Status != events.StatusPending || j.Stage != events.StageLatex || j.Lease != nil || rec.count() != 2 {
		t.Fatalf("designed: %v, %s at %q, lease %v, %d published", err, j.Status, j.Stage, j.Lease, rec.count())
	}
	j.LatexSeq = j.Seq // as if its LaTeX was written
	if _, _, err := x.Apply(ctx, id, Transition{specIndex, func(k *events.Job, _ time.Time) error {
		k.LatexSeq = j.Seq
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	d, _, err := x.Apply(ctx, id, Describe(j.Seq, func(m *Meta) { m.Description = "a worksheet" }))
	if err != nil || d.Description != "a worksheet" || d.StateRevision(0) != rev || rec.count() != 2 {
		t.Fatalf("describe: %v, %q, event revision %d (want %d), %d published", err, d.Description, d.StateRevision(0), rev, rec.count())
	}
}

// A job parked for a human has no ticket, so it leaves the active index, and a
// retry resumes it at the stage that gave up on it.
func TestParkedJobHasNoTicket(t *testing.T) {
	x, _, ctx := setup(t)
	id, _ := create(t, x, ctx)
	tk := events.Ticket{JobID: id, Stage: events.StageDesign, Seq: 1}
	if _, _, err := x.Apply(ctx, id, Claim(tk, "w", time.Minute, "")); err != nil {
		t.Fatal(err)
	}
	j, _, err := x.Apply(ctx, id, Failed("w", events.StageDesign, errors.New("refused"), true, func(int) time.Duration { return 0 }))
	if err != nil || j.Status != events.StatusWaitingManual || j.Stage != "" || j.Active() || j.Resume != events.StageDesign {
		t.Fatalf("parked: %v, %s, stage %q, active %v, resume %q", err, j.Status, j.Stage, j.Active(), j.Resume)
	}
	j, _, err = x.Apply(ctx, id, Retry(Wait{Ready: true}))
	if err != nil || j.Status != events.StatusPending || j.Stage != events.StageDesign || j.Resume != "" || !j.Active() {
		t.Fatalf("retried: %v, %s, stage %q, resume %q", err, j.Status, j.Stage, j.Resume)
	}
}

// Every transition the package builds is in the table, and the table agrees
// with the rules of the contract: nothing follows completed or aborted on its
// own, a user's retry never leaves a job running, and only a claim does.
func TestTable(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, s := range Table() {
		if names[s.Name] {
			t.Errorf("transition %q twice in the table", s.Name)
		}
		names[s.Name] = true
	}
	built := []Transition{Claim(events.Ticket{}, "", 0, ""), Renew("", time.Time{}), Designed("", "", ""),
		LatexWritten("", ""), Fixed("", ""), FixFailed("", nil), Completed("", ""), CompileFailed("", CompileError{}),
		Failed("", "", nil, false, nil), Recover(nil, "", ""), DeadTicket(events.Ticket{}, 0), Wake(Wait{}),
		Index(0), Describe(0, nil), Retry(Wait{}), Refine("", Wait{}), EditLatex(""), Abort()}
	for _, tr := range built {
		if !names[tr.Name()] {
			t.Errorf("transition %q is not in the table", tr.Name())
		}
	}
	for _, st := range events.Statuses() {
		if events.FinishedStatus(st) {
			for _, to := range events.Statuses() {
				if Follows(st, to, ByPipeline) {
					t.Errorf("the pipeline may move a %s job to %s on its own", st, to)
				}
			}
		}
		if st != events.StatusRunning && Follows(st, events.StatusRunning, ByUser) {
			t.Errorf("a user may make a %s job running", st)
		}
	}
	if !Follows("", events.StatusPending, ByUser) || Follows("", events.StatusRunning) {
		t.Error("a job starts pending, never running")
	}
}

// A job the sweeper recovers keeps the answers of the run it was recovered
// from (a worker that recorded its answer and died before writing the job
// must not make the next one pay for it again); a later hand-off of another
// kind, with new input, does not.
func TestRecoveredJobKeepsItsRunsAnswers(t *testing.T) {
	x, _, ctx := setup(t)
	id, _ := create(t, x, ctx)
	claim := func(seq uint64, owner string) {
		t.Helper()
		tk := events.Ticket{JobID: id, Stage: events.StageDesign, Seq: seq}
		if _, _, err := x.Apply(ctx, id, Claim(tk, owner, time.Millisecond, "")); err != nil {
			t.Fatalf("claim of hand-off %d: %v", seq, err)
		}
	}
	stuck := func(*events.Job, time.Time) bool { return true }
	recoverJob := func() *events.Job {
		t.Helper()
		j, _, err := x.Apply(ctx, id, Recover(stuck, "orphan", "recovered"))
		if err != nil {
			t.Fatalf("recover: %v", err)
		}
		return j
	}
	claim(1, "w1")
	// w1 recorded its answer for hand-off 1, then died; the job is recovered
	// twice (the second worker died too).
	conv := &events.Conversation{Messages: []events.Message{
		{Role: "assistant", Content: "design of hand-off 1", Stage: events.StageDesign, Seq: 1}}}
	j := recoverJob()
	claim(j.Seq, "w2")
	j = recoverJob()
	if j.Seq != 3 || j.RecoveredFrom != 1 {
		t.Fatalf("after two recoveries: hand-off %d recovered from %d, want 3 from 1", j.Seq, j.RecoveredFrom)
	}
	if m, ok := j.RecordedAnswer(conv, events.StageDesign); !ok || m.Content != "design of hand-off 1" {
		t.Fatalf("recorded answer of the recovered job: %q, %v; want hand-off 1's", m.Content, ok)
	}
	if _, ok := j.RecordedAnswer(conv, events.StageLatex); ok {
		t.Fatal("another stage's answer served the recovered job")
	}
	claim(j.Seq, "w3")
	j, _, err := x.Apply(ctx, id, Designed("w3", "fractions", "outline"))
	if err != nil || j.RecoveredFrom != 0 {
		t.Fatalf("designed: %v, recovered from %d; want it cleared by the new hand-off", err, j.RecoveredFrom)
	}
	conv.Messages = append(conv.Messages, events.Message{Role: "assistant", Content: "old latex", Stage: events.StageLatex, Seq: 2})
	if m, ok := j.RecordedAnswer(conv, events.StageLatex); ok {
		t.Fatalf("a LaTeX answer of an earlier hand-off (%q) served the new one", m.Content)
	}
}
