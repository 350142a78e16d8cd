package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

// followBatch prints each status of the batch until one is done and returns that
// status with every job as it ended. After every a.progressEvery without a change
// it prints a progress line.
func (a *app) followBatch(ctx context.Context, id string, ch <-chan events.BatchStatus) (events.BatchStatus, error) {
	var (
		last  events.BatchStatus
		jobs  []events.BatchJob
		index = map[string]int{}
	)
	start := time.Now()
	since := start
	progress := time.NewTimer(a.progressEvery)
	defer progress.Stop()
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				if last.Done && ctx.Err() == nil {
					last.Jobs = jobs
					return last, nil
				}
				return events.BatchStatus{}, a.batchWaitEnded(ctx, id)
			}
			if jobs == nil {
				jobs = append([]events.BatchJob{}, s.Jobs...)
				for i, j := range jobs {
					index[j.JobID] = i
				}
			} else {
				for _, j := range s.Jobs {
					jobs[index[j.JobID]] = j
				}
			}
			last, since = s, time.Now()
			a.printBatchStatus(s, jobs, time.Since(start))
			progress.Reset(a.progressEvery)
		case <-progress.C:
			if !a.opts.json {
				fmt.Fprintf(a.out, "%s still %s: nothing new for %s (%s since the wait started)\n", dateTime(time.Now()),
					countsText(last.Counts), time.Since(since).Round(time.Second), time.Since(start).Round(time.Second))
			}
			progress.Reset(a.progressEvery)
		case <-ctx.Done():
			return events.BatchStatus{}, a.batchWaitEnded(ctx, id)
		}
	}
}

// printBatchStatus prints one status of a followed batch: itself in JSON mode,
// else "YYYY-MM-DD HH:MM:SS +elapsed n/total ended: counts", with the job that
// changed.
func (a *app) printBatchStatus(s events.BatchStatus, jobs []events.BatchJob, elapsed time.Duration) {
	if a.opts.json {
		a.printJSON(s)
		return
	}
	ended := 0
	for _, j := range jobs {
		if events.Finished(j.Status, j.Step) {
			ended++
		}
	}
	line := fmt.Sprintf("%s %-6s %d/%d ended: %s", dateTime(time.Now()), "+"+shortDuration(elapsed), ended, s.Total, countsText(s.Counts))
	if len(s.Jobs) == 1 && len(jobs) > 1 {
		line += fmt.Sprintf(" | job %s %s at %s", s.Jobs[0].JobID, s.Jobs[0].Status, s.Jobs[0].Step)
	}
	fmt.Fprintln(a.out, line)
}

// batchOutcome reports a done batch: success when every job completed, else a
// failure listing the jobs that did not. saved PDFs were written.
func (a *app) batchOutcome(s events.BatchStatus, elapsed time.Duration, saved int) error {
	pdfs := ""
	if saved > 0 {
		pdfs = fmt.Sprintf("; %s saved to %s", plural(saved, "PDF", "PDFs"), a.dir)
		if abs, err := filepath.Abs(a.dir); err == nil {
			pdfs = fmt.Sprintf("; %s saved to %s", plural(saved, "PDF", "PDFs"), abs)
		}
	}
	if s.Counts[events.StatusCompleted] == s.Total {
		if !a.opts.json {
			fmt.Fprintf(a.out, "batch %s done in %s: %s%s\n", s.BatchID, shortDuration(elapsed), countsText(s.Counts), pdfs)
		}
		return nil
	}
	const listed = 20
	var b strings.Builder
	fmt.Fprintf(&b, "batch %s done in %s, not all completed: %s%s", s.BatchID, shortDuration(elapsed), countsText(s.Counts), pdfs)
	n := 0
	for _, j := range s.Jobs {
		if j.Status == events.StatusCompleted {
			continue
		}
		if n++; n <= listed {
			fmt.Fprintf(&b, "\njob %s %s at %s", j.JobID, j.Status, j.Step)
		}
	}
	if n > listed {
		fmt.Fprintf(&b, "\nand %d more (sheetctl batch get %s)", n-listed, s.BatchID)
	}
	return errors.New(b.String())
}

// saveBatchPDFs writes the PDF of every completed job of s to <job_id>.pdf in
// a.dir, a line each, and returns how many it wrote; a failure is reported
// after trying the others.
func (a *app) saveBatchPDFs(ctx context.Context, c *client.Client, s events.BatchStatus) (int, error) {
	saved := 0
	var errs []error
	for _, j := range s.Jobs {
		if j.Status != events.StatusCompleted {
			continue
		}
		if err := a.savePDF(ctx, c, j.JobID, ""); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", j.JobID, err))
			continue
		}
		saved++
	}
	if len(errs) > 0 {
		return saved, fmt.Errorf("batch %s: %d of %d PDFs not saved: %w", s.BatchID, len(errs), len(errs)+saved, errors.Join(errs...))
	}
	return saved, nil
}

// batchWaitEnded explains a wait that stopped before the batch was done.
func (a *app) batchWaitEnded(ctx context.Context, id string) error {
	resume := "the jobs go on; follow them with: sheetctl batch watch " + id
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("wait for batch %s: timed out after %s; %s", id, a.opts.timeout, resume)
	case ctx.Err() != nil:
		return fmt.Errorf("wait for batch %s: interrupted; %s", id, resume)
	}
	return fmt.Errorf("wait for batch %s: the status stream ended (connection lost?); %s", id, resume)
}

// statusOrder is the order counts are shown in: the pipeline's course, then
// its ends.
var statusOrder = []events.Status{events.StatusMissing, events.StatusPending, events.StatusRunning,
	events.StatusWaitingAIFix, events.StatusError, events.StatusWaitingManual, events.StatusAborted, events.StatusCompleted}

// countsText is "completed 2, running 1", in statusOrder.
func countsText(counts map[events.Status]int) string {
	var parts []string
	for _, st := range statusOrder {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	if len(parts) == 0 {
		return "no jobs"
	}
	return strings.Join(parts, ", ")
}

// printBatch writes the human summary of a batch's status, then a table of its
// jobs.
func printBatch(w io.Writer, s events.BatchStatus) {
	state := "not done: some jobs have not ended"
	if s.Done {
		state = "done: every job has ended"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "batch\t%s\n", s.BatchID)
	fmt.Fprintf(tw, "created\t%s\n", localTime(s.CreatedAt))
	fmt.Fprintf(tw, "jobs\t%d, %s\n", s.Total, state)
	fmt.Fprintf(tw, "counts\t%s\n", countsText(s.Counts))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB ID\tSTATUS\tSTEP")
	for _, j := range s.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", j.JobID, j.Status, j.Step)
	}
	tw.Flush()
}
