package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var watchCommand = &command{
	name:    "watch",
	args:    "<job-id>",
	summary: "follow a job until it ends and save its PDF",
	about: `Prints the job's status changes from the first one, then live, with a progress
line after every 15s of silence. When the job completes it writes <job_id>.pdf in
the current directory and exits 0; it exits 1 if the job ends waiting_manual,
aborted or invalid, or if --timeout passes first (the job goes on).`,
	setup: func(a *app, _ *flag.FlagSet) func(context.Context, []string) error {
		return a.watch
	},
}

func (a *app) watch(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageErr("watch", "watch needs one job id")
	}
	id, err := uuid.Parse(args[0])
	if err != nil {
		return usageErr("watch", "job id %q is not a UUID", args[0])
	}
	nc, c, err := a.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	waitCtx, cancel := context.WithTimeout(ctx, a.opts.timeout)
	defer cancel()
	ch, err := c.Watch(waitCtx, id.String())
	if err != nil {
		return fmt.Errorf("watch job %s: %w", id, err)
	}
	return a.await(ctx, waitCtx, c, id.String(), ch)
}

// await follows the job's events until its run ends (bounded by waitCtx), then
// saves the PDF of a completed job or reports why it stopped.
func (a *app) await(ctx, waitCtx context.Context, c *client.Client, id string, ch <-chan events.StatusEvent) error {
	last, err := a.follow(waitCtx, id, ch)
	if err != nil {
		return err
	}
	if last.Status != events.StatusCompleted {
		return &jobEndedError{ev: last}
	}
	return a.savePDF(ctx, c, id, "")
}

// follow prints events until one ends the job's run and returns it. After every
// a.progressEvery without an event it prints a progress line.
func (a *app) follow(ctx context.Context, id string, ch <-chan events.StatusEvent) (events.StatusEvent, error) {
	var last *events.StatusEvent
	since := time.Now()
	progress := time.NewTimer(a.progressEvery)
	defer progress.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return events.StatusEvent{}, a.waitEnded(ctx, id)
			}
			a.printEvent(ev)
			if ev.Final() {
				return ev, nil
			}
			last, since = &ev, time.Now()
			progress.Reset(a.progressEvery)
		case <-progress.C:
			a.printProgress(last, time.Since(since))
			progress.Reset(a.progressEvery)
		case <-ctx.Done():
			return events.StatusEvent{}, a.waitEnded(ctx, id)
		}
	}
}

// waitEnded explains a wait that stopped before the job's run ended.
func (a *app) waitEnded(ctx context.Context, id string) error {
	resume := "the job goes on; follow it with: sheetctl watch " + id
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("wait for job %s: timed out after %s; %s", id, a.opts.timeout, resume)
	case ctx.Err() != nil:
		return fmt.Errorf("wait for job %s: interrupted; %s", id, resume)
	}
	return fmt.Errorf("wait for job %s: the status stream ended (connection lost?); %s", id, resume)
}

// jobEndedError is a job whose run ended without a PDF: waiting_manual, aborted, or
// an invalid request.
type jobEndedError struct {
	ev events.StatusEvent
}

// Error is one line naming the job, its status and why, followed by the error
// snippet when there is one.
func (e *jobEndedError) Error() string {
	why := e.ev.Message
	if e.ev.Error != nil && e.ev.Error.Message != "" {
		why = errorText(e.ev.Error)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "job %s %s at %s: %s", e.ev.JobID, e.ev.Status, e.ev.Step, why)
	if e.ev.Error != nil && strings.TrimSpace(e.ev.Error.Snippet) != "" {
		b.WriteString("\n" + strings.TrimRight(e.ev.Error.Snippet, "\n"))
	}
	return b.String()
}
