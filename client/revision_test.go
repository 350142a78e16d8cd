package client_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

// IfRevision makes a change conditional on the revision the caller read: of ten
// edits on one revision one is made, and the others, like a retry, refine or
// abort on a revision the job has left, fail with events.ErrStale carrying the
// job's current revision and change nothing.
func TestIfRevision(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)
	id, _ := completedJob(ctx, t, c, "ada")
	// Description and tags come after the completion, without an event.
	deadline := time.Now().Add(time.Minute)
	base, err := c.Get(ctx, id)
	for err == nil && base.Description == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		base, err = c.Get(ctx, id)
	}
	if err != nil || base.Description == "" {
		t.Fatalf("the job was not described: %v", err)
	}

	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = c.EditLatex(ctx, id, brokenLatex, client.IfRevision(base.Revision))
		})
	}
	close(start)
	wg.Wait()
	var won int
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, events.ErrStale) || !errors.Is(err, events.ErrConflict) || events.RevisionOf(err) <= base.Revision:
			t.Fatalf("a losing edit failed with %v, want ErrStale with a revision after %d", err, base.Revision)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d edits on revision %d were made, want 1", won, n, base.Revision)
	}

	evs := followRun(ctx, t, c, id, base.Revision+1)
	checkWaitingManual(t, evs)
	now, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(...client.ChangeOption) error{
		"edit":   func(o ...client.ChangeOption) error { _, err := c.EditLatex(ctx, id, goodLatex, o...); return err },
		"retry":  func(o ...client.ChangeOption) error { _, err := c.Retry(ctx, id, o...); return err },
		"refine": func(o ...client.ChangeOption) error { _, err := c.Refine(ctx, id, "harder", o...); return err },
		"abort":  func(o ...client.ChangeOption) error { _, err := c.Abort(ctx, id, o...); return err },
	} {
		err := change(client.IfRevision(base.Revision))
		var ce *events.ControlError
		if !errors.As(err, &ce) || ce.Code != events.CodeConflict || ce.Revision != now.Revision || !strings.Contains(ce.Message, "read it again") {
			t.Fatalf("%s on revision %d: %v, want a 409 naming revision %d", name, base.Revision, err, now.Revision)
		}
		checkControlError(t, change(client.IfRevision(0)), events.CodeBadRequest, "if_revision 0")
	}
	if after, err := c.Get(ctx, id); err != nil || after.Revision != now.Revision {
		t.Fatalf("stale changes wrote the job: revision %d -> %d (%v)", now.Revision, after.Revision, err)
	}
	if j, err := c.Abort(ctx, id, client.IfRevision(now.Revision)); err != nil || j.Status != events.StatusAborted {
		t.Fatalf("abort on the current revision: %v", err)
	}
}
