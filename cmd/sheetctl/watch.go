package main

import (
	"context"
	"errors"

	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

var watchCommand = &command{
	name:    "watch",
	args:    "[job-id]",
	summary: "follow a job until it ends and save its PDF; without an id, every job's events",
	about: `With a job id: prints the job's status changes from the first one, then live,
with the date, time and time since the run started, and a line when nothing
changed for a minute, until its latest run ends. When
the job completes it writes <job_id>.pdf in the current directory and exits 0; it
exits 1 if the job ends waiting_manual or aborted, or if --timeout passes first
(the job goes on), and 3 if there is no such job.

Without a job id: prints the status changes of every job from now on, one line
per event starting with the job id, until interrupted (exit 0), or until
--timeout passes when it is given.`,
	setup: func(a *app, _ *pflag.FlagSet) func(context.Context, []string) error {
		return a.watch
	},
}

func (a *app) watch(ctx context.Context, args []string) error {
	switch len(args) {
	case 0:
		return a.withClient(func(c *client.Client) error { return a.watchAll(ctx, c) })
	case 1:
	default:
		return usageErr("watch", "watch takes at most one job id")
	}
	id, err := jobIDArg("watch", args[0])
	if err != nil {
		return err
	}
	return a.withClient(func(c *client.Client) error {
		if _, err := a.getJob(ctx, c, id); err != nil {
			return err
		}
		return a.waitFor(ctx, c, id, 0)
	})
}

// watchAll prints every job's events until ctx ends, or --timeout when given.
func (a *app) watchAll(ctx context.Context, c *client.Client) error {
	if a.opts.timeoutSet {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.opts.timeout)
		defer cancel()
	}
	ch, err := c.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch all jobs: %w", err)
	}
	fmt.Fprintln(a.err, "watching the events of every job from now on; interrupt (Ctrl-C) to stop")
	for ev := range ch {
		a.printJobEvent(ev)
	}
	if ctx.Err() == nil {
		return errors.New("watch all jobs: the status stream ended (connection lost?)")
	}
	return nil
}

// waitFor follows job id from revision rev (0: its first event) until its run
// ends, then saves the PDF of a completed job or reports why it stopped.
func (a *app) waitFor(ctx context.Context, c *client.Client, id string, rev uint64) error {
	waitCtx, cancel := context.WithTimeout(ctx, a.opts.timeout)
	defer cancel()
	ch, err := c.WatchFrom(waitCtx, id, rev)
	if err != nil {
		return fmt.Errorf("watch job %s: %w", id, err)
	}
	return a.await(ctx, waitCtx, c, id, ch)
}

// await follows the job's events until its run ends (bounded by waitCtx), then
// saves the PDF of a completed job or reports why it stopped; the last line says
// how the run ended and after how many AI fixes and retries.
func (a *app) await(ctx, waitCtx context.Context, c *client.Client, id string, ch <-chan events.StatusEvent) error {
	last, r, err := a.follow(waitCtx, id, ch)
	if err != nil {
		return err
	}
	if last.Status != events.StatusCompleted {
		return &jobEndedError{ev: last, after: r.after()}
	}
	path, size, err := a.writePDF(ctx, c, id, "")
	if err != nil {
		return err
	}
	if a.opts.json {
		a.printSaved(id, path, size)
		return nil
	}
	how := "completed in " + shortDuration(r.elapsed(last))
	if after := r.after(); after != "" {
		how += " " + after
	}
	fmt.Fprintf(a.out, "%s: PDF saved to %s (%d bytes)\n", how, path, size)
	return nil
}

// follow prints events until the watch ends after the job's run and returns the
// last one with what is known of its run. When nothing happened for
// a.progressEvery it prints a line saying so.
func (a *app) follow(ctx context.Context, id string, ch <-chan events.StatusEvent) (events.StatusEvent, *jobRun, error) {
	var (
		last *events.StatusEvent
		r    jobRun
	)
	since := time.Now()
	progress := time.NewTimer(a.progressEvery)
	defer progress.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				if last != nil && last.Final() && ctx.Err() == nil {
					return *last, &r, nil
				}
				return events.StatusEvent{}, nil, a.waitEnded(ctx, id)
			}
			r.add(ev)
			a.printEvent(ev, &r)
			last, since = &ev, time.Now()
			progress.Reset(a.progressEvery)
		case <-progress.C:
			a.printProgress(last, &r, time.Since(since))
			progress.Reset(a.progressEvery)
		case <-ctx.Done():
			return events.StatusEvent{}, nil, a.waitEnded(ctx, id)
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
	ev    events.StatusEvent
	after string // "after 3 AI fixes", or ""
}

// Error is one line naming the job, its status and why, followed by the error
// snippet when there is one.
func (e *jobEndedError) Error() string {
	why := e.ev.Message
	if e.ev.Error != nil && e.ev.Error.Message != "" {
		why = errorText(e.ev.Error)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "job %s %s at %s", e.ev.JobID, e.ev.Status, e.ev.Step)
	if e.after != "" {
		b.WriteString(" " + e.after)
	}
	fmt.Fprintf(&b, ": %s", why)
	if e.ev.Error != nil && strings.TrimSpace(e.ev.Error.Snippet) != "" {
		b.WriteString("\n" + strings.TrimRight(e.ev.Error.Snippet, "\n"))
	}
	return b.String()
}
