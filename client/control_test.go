package client_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

const (
	goodLatex   = "\\documentclass{article}\n\\begin{document}\nA worksheet edited by hand.\n\\end{document}\n"
	brokenLatex = "\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n\\end{document}\n"
)

func TestGetAndList(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)
	adas, adaEvents := completedJob(ctx, t, c, "ada")
	bobs, _ := completedJob(ctx, t, c, "bob")

	j, err := c.Get(ctx, strings.ToUpper(adas))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	last := adaEvents[len(adaEvents)-1]
	if j.ID != adas || j.UserID != "ada" || j.Prompt != prompt || j.Status != events.StatusCompleted ||
		j.CurrentStep != events.StepDone || j.PDFURL != "/jobs/"+adas+"/pdf" || j.Revision < last.Revision ||
		!strings.Contains(j.Latex, "\\documentclass") || j.MaxRetries != events.DefaultMaxRetries {
		t.Fatalf("Get returned %+v, want ada's completed job at revision %d or later (description and tags come without an event) with LaTeX and pdf_url", j, last.Revision)
	}

	for _, tc := range []struct {
		name      string
		q         events.ListQuery
		want      []string
		truncated bool
	}{
		{"all, newest first", events.ListQuery{}, []string{bobs, adas}, false},
		{"one user", events.ListQuery{UserID: "bob"}, []string{bobs}, false},
		{"status and user", events.ListQuery{Status: events.StatusCompleted, UserID: "ada"}, []string{adas}, false},
		{"no match", events.ListQuery{Status: events.StatusAborted}, nil, false},
		{"limit", events.ListQuery{Limit: 1}, []string{bobs}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := c.List(ctx, tc.q)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, j := range reply.Jobs {
				got = append(got, j.JobID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") || reply.Truncated != tc.truncated {
				t.Fatalf("List(%+v) = %v truncated %v, want %v truncated %v", tc.q, got, reply.Truncated, tc.want, tc.truncated)
			}
		})
	}
	_, err = c.List(ctx, events.ListQuery{Status: "bogus"})
	checkControlError(t, err, events.CodeBadRequest, `status "bogus"`)
	_, err = c.List(ctx, events.ListQuery{Limit: events.MaxListLimit + 1})
	checkControlError(t, err, events.CodeBadRequest, "limit")
}

// A manual edit compiles the user's LaTeX; a broken one waits for the user, a
// retry compiles it again, and an abort ends the job for good.
func TestEditRetryAbort(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)
	id, _ := completedJob(ctx, t, c, "ada")

	j, err := c.EditLatex(ctx, id, goodLatex)
	if err != nil || j.Latex != goodLatex {
		t.Fatalf("EditLatex: %+v, %v; want the job with the new LaTeX", j, err)
	}
	evs := followRun(ctx, t, c, id, j.Revision)
	if last := evs[len(evs)-1]; last.Status != events.StatusCompleted || evs[0].Revision < j.Revision {
		t.Fatalf("run after a good edit: %s, want it to complete from revision %d", describe(evs), j.Revision)
	}
	if pdf, err := c.PDF(ctx, id); err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("PDF after the edit: %v", err)
	}

	j, err = c.EditLatex(ctx, id, brokenLatex)
	if err != nil {
		t.Fatalf("EditLatex broken: %v", err)
	}
	checkWaitingManual(t, followRun(ctx, t, c, id, j.Revision))
	// The object store still holds the first run's PDF; it is not this run's.
	if _, err := c.PDF(ctx, id); !errors.Is(err, client.ErrNoPDF) || !strings.Contains(err.Error(), "waiting_manual") {
		t.Fatalf("PDF after a failed edit: %v, want ErrNoPDF naming the state", err)
	}
	j, err = c.Retry(ctx, id)
	if err != nil {
		t.Fatalf("Retry: %v", err)
	}
	checkWaitingManual(t, followRun(ctx, t, c, id, j.Revision))

	j, err = c.Abort(ctx, id)
	if err != nil || j.Status != events.StatusAborted {
		t.Fatalf("Abort: %+v, %v; want an aborted job", j, err)
	}
	if got, err := c.Get(ctx, id); err != nil || got.Status != events.StatusAborted || got.Revision < j.Revision {
		t.Fatalf("Get after Abort: %+v, %v", got, err)
	}
	_, err = c.Abort(ctx, id)
	checkControlError(t, err, events.CodeConflict, "aborted")
	_, err = c.EditLatex(ctx, id, goodLatex)
	checkControlError(t, err, events.CodeConflict, "aborted")
	_, err = c.Retry(ctx, id)
	checkControlError(t, err, events.CodeConflict, "aborted")
}

// checkWaitingManual checks a run that ended on a compile error of the user's LaTeX.
func checkWaitingManual(t *testing.T, evs []events.StatusEvent) {
	t.Helper()
	last := evs[len(evs)-1]
	if last.Status != events.StatusWaitingManual || last.Step != events.StepCompile || last.Error == nil ||
		last.Error.Line != 3 || !strings.Contains(last.Error.Snippet, "undefinedmacro") {
		t.Fatalf("run after a broken edit: %s ending %+v, want waiting_manual at compile with line 3 and a snippet", describe(evs), last.Error)
	}
}

// Refining a completed job regenerates it from the design; Watch then shows both
// runs and ends with the second.
func TestRefine(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)
	id, first := completedJob(ctx, t, c, "ada")

	j, err := c.Refine(ctx, id, "add three word problems")
	if err != nil {
		t.Fatalf("Refine: %v", err)
	}
	evs := followRun(ctx, t, c, id, j.Revision)
	if last := evs[len(evs)-1]; last.Status != events.StatusCompleted || last.PDFURL == "" || last.Revision <= first[len(first)-1].Revision {
		t.Fatalf("run after Refine: %s, want it to complete again", describe(evs))
	}
	got, err := c.Get(ctx, id)
	if err != nil || !strings.Contains(got.RevisedPrompt, "add three word problems") || got.Prompt != prompt {
		t.Fatalf("Get after Refine: %+v, %v; want the revised request kept beside the prompt", got, err)
	}

	ch, err := c.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	all := collect(ctx, t, ch)
	completed, recompiled := 0, false
	for _, ev := range all {
		switch {
		case ev.Status == events.StatusCompleted:
			completed++
		case completed == 1 && ev.Status == events.StatusRunning && ev.Step == events.StepCompile:
			recompiled = true
		}
	}
	if completed != 2 || !recompiled || all[len(all)-1].Revision != got.Revision {
		t.Fatalf("Watch of a refined job: %s, want both runs, ending at revision %d", describe(all), got.Revision)
	}
}

func TestControlErrors(t *testing.T) {
	s := startPipeline(t)
	c := newClient(t, s)
	ctx := testContext(t)
	done, _ := completedJob(ctx, t, c, "ada")
	unknown := uuid.NewString()
	for _, tc := range []struct {
		name string
		call func() error
		code int
		want string
	}{
		{"get bad id", func() error { _, err := c.Get(ctx, "job-1"); return err }, events.CodeBadRequest, `job_id "job-1"`},
		{"abort no id", func() error { _, err := c.Abort(ctx, ""); return err }, events.CodeBadRequest, "job_id is required"},
		{"retry bad id", func() error { _, err := c.Retry(ctx, "job-1"); return err }, events.CodeBadRequest, "not a UUID"},
		{"blank instruction", func() error { _, err := c.Refine(ctx, done, " \n"); return err }, events.CodeBadRequest, "instruction is required"},
		{"blank latex", func() error { _, err := c.EditLatex(ctx, done, "  "); return err }, events.CodeBadRequest, "latex is required"},
		{"get unknown", func() error { _, err := c.Get(ctx, unknown); return err }, events.CodeNotFound, unknown},
		{"edit unknown", func() error { _, err := c.EditLatex(ctx, unknown, goodLatex); return err }, events.CodeNotFound, unknown},
		{"retry unknown", func() error { _, err := c.Retry(ctx, unknown); return err }, events.CodeNotFound, unknown},
		{"refine unknown", func() error { _, err := c.Refine(ctx, unknown, "more"); return err }, events.CodeNotFound, unknown},
		{"abort unknown", func() error { _, err := c.Abort(ctx, unknown); return err }, events.CodeNotFound, unknown},
		{"retry completed", func() error { _, err := c.Retry(ctx, done); return err }, events.CodeConflict, "completed"},
		{"abort completed", func() error { _, err := c.Abort(ctx, done); return err }, events.CodeConflict, "completed"},
		{"submit the id with another prompt", func() error {
			_, err := c.Submit(ctx, events.JobRequest{JobID: done, UserID: "ada", Prompt: "another worksheet"})
			return err
		}, events.CodeConflict, "different request"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkControlError(t, tc.call(), tc.code, tc.want) })
	}
}

// Without sheetd's control API on the server every control request fails at once
// with ErrNoService, naming the subject nobody answers.
func TestNoService(t *testing.T) {
	s := testnats.Provisioned(t, broker.Resources{})
	c := newClient(t, s)
	ctx := testContext(t)
	id := uuid.NewString()
	for op, call := range map[string]func() error{
		events.OpSubmit: func() error { _, err := c.Submit(ctx, events.JobRequest{UserID: "ada", Prompt: prompt}); return err },
		events.OpGet:    func() error { _, err := c.Get(ctx, id); return err },
		events.OpLatex:  func() error { _, err := c.EditLatex(ctx, id, goodLatex); return err },
		events.OpRetry:  func() error { _, err := c.Retry(ctx, id); return err },
		events.OpRefine: func() error { _, err := c.Refine(ctx, id, "more"); return err },
		events.OpAbort:  func() error { _, err := c.Abort(ctx, id); return err },
		events.OpList:   func() error { _, err := c.List(ctx, events.ListQuery{}); return err },
	} {
		t.Run(op, func(t *testing.T) {
			err := call()
			want := "no sheetd answers sheetpipe." + op + " on this server; is sheetd running?"
			if !errors.Is(err, client.ErrNoService) || err.Error() != want {
				t.Fatalf("error %v, want ErrNoService saying %q", err, want)
			}
		})
	}
}

// A service that never answers makes a request fail when its context ends.
func TestRequestEndsWithContext(t *testing.T) {
	s := testnats.Start(t)
	sub, err := s.NC.Subscribe(events.ControlSubject(events.OpGet), func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	c := newClient(t, s)
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	if _, err := c.Get(ctx, uuid.NewString()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with an ended context: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(testContext(t), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, uuid.NewString()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get of a silent service: %v, want context.DeadlineExceeded", err)
	}
}
