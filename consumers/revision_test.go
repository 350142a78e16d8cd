package consumers_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// newControlEnv is a pipeline that runs only the prompt stage: a job submitted
// through the control operation waits at design with nobody to take it, so
// only the test and the control operations write it.
func newControlEnv(t *testing.T) *env {
	t.Helper()
	e := newIdleEnv(t, broker.Resources{}, steps("design", goodLatex, ""))
	e.pipe = e.startPipeline(events.StagePrompt)
	return e
}

// rawJob is the job's KV entry as stored: its bytes and revision.
func (e *env) rawJob(id string) jetstream.KeyValueEntry {
	e.t.Helper()
	kv, err := e.nats.JS.KeyValue(e.ctx, kvstore.BucketJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	entry, err := kv.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("get job %s: %v", id, err)
	}
	return entry
}

// streamMsgs is how many messages stream name holds.
func (e *env) streamMsgs(name string) uint64 {
	e.t.Helper()
	s, err := e.nats.JS.Stream(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// Ten edits based on the same revision race: the CAS write expects that
// revision, so exactly one is written; the nine others are refused as stale
// with the winner's revision, publish no event, and the job keeps the winner's
// LaTeX.
func TestConcurrentEditsOnOneRevisionOneWins(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	id := e.submitNew("")
	base := e.rawJob(id).Revision()
	eventsBefore := e.streamMsgs(events.StreamEvents)

	const n = 10
	type outcome struct {
		latex string
		job   *events.Versioned
		err   error
	}
	results := make([]outcome, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		latex := fmt.Sprintf("\\documentclass{article}\n\\begin{document}\nEdit %d.\n\\end{document}\n", i)
		wg.Go(func() {
			<-start
			j, err := e.plane.EditLatex(e.ctx, events.LatexEdit{JobID: id, Latex: latex, IfRevision: events.Revision(base)})
			results[i] = outcome{latex, j, err}
		})
	}
	close(start)
	wg.Wait()

	var winner *outcome
	for i, r := range results {
		if r.err == nil {
			if winner != nil {
				t.Fatalf("two edits on revision %d both won: %q and %q", base, winner.latex, r.latex)
			}
			winner = &results[i]
		}
	}
	if winner == nil {
		t.Fatalf("no edit won: %v", results[0].err)
	}
	for _, r := range results {
		if r.err == nil {
			continue
		}
		var se *events.StaleError
		if !errors.As(r.err, &se) || !errors.Is(r.err, events.ErrConflict) || events.CodeOf(r.err) != events.CodeConflict ||
			se.Revision != winner.job.Revision || se.IfRevision != base || events.RevisionOf(r.err) != winner.job.Revision {
			t.Errorf("losing edit: %v, want a 409 StaleError at revision %d", r.err, winner.job.Revision)
		}
	}
	got := e.rawJob(id)
	if j := e.job(id); j.Latex != winner.latex || got.Revision() != winner.job.Revision {
		t.Fatalf("job has LaTeX %q at revision %d, want the winner's %q at %d", j.Latex, got.Revision(), winner.latex, winner.job.Revision)
	}
	if after := e.streamMsgs(events.StreamEvents); after != eventsBefore+1 {
		t.Fatalf("%d status events for ten edits of which one won, want 1", after-eventsBefore)
	}
}

// A retry, refine or abort based on a revision the job has left is refused with
// the current revision and changes nothing: the job's bytes and revision stay,
// and no status event or ticket is published. Based on the current revision,
// the same request works.
func TestStaleChangesChangeNothing(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	id := e.submitNew("")
	waiting, _, err := e.store.Update(e.ctx, id, func(j *events.Job) error {
		j.Status, j.CurrentStep, j.Stage = events.StatusWaitingManual, events.StepCompile, ""
		j.ErrorMessage, j.Message = "Max retries exceeded", "Max retries exceeded"
		return nil
	})
	if err != nil || waiting.Status != events.StatusWaitingManual {
		t.Fatal(err)
	}
	stale := e.rawJob(id).Revision()
	_, current, err := e.store.Update(e.ctx, id, func(j *events.Job) error { j.Message = "changed by someone else"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	before := e.rawJob(id)
	eventsBefore, ticketsBefore := e.streamMsgs(events.StreamEvents), e.streamMsgs(events.StreamJobs)

	ops := map[string]func(*uint64) (*events.Versioned, error){
		"retry": func(rev *uint64) (*events.Versioned, error) {
			return e.plane.Retry(e.ctx, events.JobChange{JobID: id, IfRevision: rev})
		},
		"refine": func(rev *uint64) (*events.Versioned, error) {
			return e.plane.Refine(e.ctx, events.Refinement{JobID: id, Instruction: "harder", IfRevision: rev})
		},
		"abort": func(rev *uint64) (*events.Versioned, error) {
			return e.plane.Abort(e.ctx, events.JobChange{JobID: id, IfRevision: rev})
		},
		"edit": func(rev *uint64) (*events.Versioned, error) {
			return e.plane.EditLatex(e.ctx, events.LatexEdit{JobID: id, Latex: goodLatex, IfRevision: rev})
		},
	}
	for name, op := range ops {
		_, err := op(events.Revision(stale))
		if !errors.Is(err, events.ErrStale) || events.CodeOf(err) != events.CodeConflict || events.RevisionOf(err) != current {
			t.Errorf("%s on stale revision %d: %v, want a 409 naming revision %d", name, stale, err, current)
		}
		if _, err := op(events.Revision(0)); events.CodeOf(err) != events.CodeBadRequest {
			t.Errorf("%s with if_revision 0: %v, want 400", name, err)
		}
	}
	after := e.rawJob(id)
	if after.Revision() != before.Revision() || string(after.Value()) != string(before.Value()) {
		t.Fatalf("stale changes wrote the job: revision %d -> %d\n%s\n%s", before.Revision(), after.Revision(), before.Value(), after.Value())
	}
	if ev, tk := e.streamMsgs(events.StreamEvents), e.streamMsgs(events.StreamJobs); ev != eventsBefore || tk != ticketsBefore {
		t.Fatalf("stale changes published %d events and %d tickets, want none", ev-eventsBefore, tk-ticketsBefore)
	}

	j, err := ops["retry"](events.Revision(current))
	if err != nil || j.Status != events.StatusPending || j.Revision <= current {
		t.Fatalf("retry on the current revision %d: %v, %+v", current, err, j)
	}
	if _, err := ops["abort"](events.Revision(current)); !errors.Is(err, events.ErrStale) || events.RevisionOf(err) != j.Revision {
		t.Fatalf("abort on the revision the retry replaced: %v, want stale at %d", err, j.Revision)
	}
	if a, err := ops["abort"](events.Revision(j.Revision)); err != nil || a.Status != events.StatusAborted {
		t.Fatalf("abort on the current revision %d: %v, %+v", j.Revision, err, a)
	}
}
