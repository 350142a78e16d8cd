package consumers_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
)

// storedEvents reads every status event JOB_EVENTS holds, by job.
func (e *env) storedEvents() map[string][]events.StatusEvent {
	e.t.Helper()
	cons, err := e.nats.JS.OrderedConsumer(e.ctx, events.StreamEvents,
		jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectStatus}})
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := cons.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]events.StatusEvent{}
	for n := info.NumPending; n > 0; {
		batch, err := cons.Fetch(int(n), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			var ev events.StatusEvent
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				e.t.Fatal(err)
			}
			out[ev.JobID] = append(out[ev.JobID], ev)
			got++
		}
		if got == 0 {
			e.t.Fatalf("JOB_EVENTS: %d events not delivered (%v)", n, batch.Error())
		}
		n -= uint64(got)
	}
	return out
}

// TestImportEventSurvivesCrash: an import that dies between the job's create
// and its event leaves the job stored without either event or ticket; a re-run
// publishes the event with the revision of that create, so JOB_EVENTS holds it
// exactly once (a further re-run inside the duplicates window adds nothing;
// a run whose record differs from the stored job publishes none), and hands the resumed job to its stage, which completes it. Outside the
// window a re-run stores the event again, with the same revision.
func TestImportEventSurvivesCrash(t *testing.T) {
	t.Parallel()
	e := newIdleEnv(t, broker.Resources{}, steps("a design", goodLatex, goodLatex))
	p, err := e.newPlane(), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := oldRecord("20000000-0000-4000-8000-000000000001", "conv-done")
	resumed := oldRecord("20000000-0000-4000-8000-000000000002", "conv-resumed")
	resumed.Job.Status, resumed.Job.CurrentStep, resumed.Job.Latex = events.StatusPending, events.StepDesign, ""
	recs := []events.ImportRecord{done, resumed}
	for _, rec := range recs {
		if err := p.StoreImported(e.ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if evs := e.storedEvents(); len(evs) != 0 {
		t.Fatalf("the crashed import published events: %v", evs)
	}
	rerun := func() {
		t.Helper()
		reply, err := p.Import(e.ctx, events.ImportRequest{Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reply.Results {
			if r.Outcome != events.ImportSkipped || r.Note != "" {
				t.Fatalf("re-run: %+v, want skipped with no note", r)
			}
		}
	}
	// count checks that every event of each job in JOB_EVENTS is its import
	// event at the revision the job was created at, and returns the fewest
	// copies a job has.
	count := func() int {
		t.Helper()
		stored, fewest := e.storedEvents(), -1
		for _, rec := range recs {
			_, rev, err := e.store.Get(e.ctx, rec.Job.ID)
			if err != nil {
				t.Fatal(err)
			}
			evs := stored[rec.Job.ID]
			for _, ev := range evs {
				if ev.Revision != rev || ev.Message != control.ImportedMessage {
					t.Fatalf("job %s: event %+v, want %q at revision %d", rec.Job.ID, ev, control.ImportedMessage, rev)
				}
			}
			if fewest == -1 || len(evs) < fewest {
				fewest = len(evs)
			}
		}
		return fewest
	}
	want := func(n int) {
		t.Helper()
		if got, total := count(), e.streamMsgs(events.StreamEvents); got != n || total != uint64(n*len(recs)) {
			t.Fatalf("JOB_EVENTS holds %d events, at least %d a job, want %d of each job", total, got, n)
		}
	}
	rerun()
	want(1)
	rerun()
	want(1)

	// A job stored by another import than this run's (the record changed since)
	// is not announced by it: the event would not be this run's.
	other := oldRecord("20000000-0000-4000-8000-000000000003", "conv-other")
	if err := p.StoreImported(e.ctx, other); err != nil {
		t.Fatal(err)
	}
	other.Job.Prompt = "fractions, changed since"
	if reply, err := p.Import(e.ctx, events.ImportRequest{Records: []events.ImportRecord{other}}); err != nil ||
		reply.Results[0].Outcome != events.ImportSkipped {
		t.Fatalf("import of a changed record: %+v %v", reply, err)
	}
	want(1)
	if evs := e.storedEvents()[other.Job.ID]; len(evs) != 0 {
		t.Fatalf("a different import's job was announced:%s", describe(evs))
	}

	// Outside the duplicates window the event is stored again, same revision.
	s, err := e.nats.JS.Stream(e.ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := e.nats.JS.UpdateStream(e.ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); count() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("no event stored again outside the duplicates window")
		}
		rerun()
	}

	e.pipe = e.startPipeline()
	e.waitStatus(resumed.Job.ID, events.StatusCompleted)
}
