package consumers

import (
	"context"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// JanitorPass runs one janitor pass of p now, whatever its interval, and
// returns how many jobs, orphan conversations and orphan PDFs it deleted.
func (p *Pipeline) JanitorPass(ctx context.Context) (jobs, conversations, pdfs int, err error) {
	done, err := (&janitor{p: p}).pass(ctx, ctx)
	return done.jobs, done.conversations, done.pdfs, err
}

// ExpireJob runs the janitor's deletion of job id (whose conversation has the
// same id) as if its scan had found the job expired at revision rev, and reports
// whether it deleted the job.
func (p *Pipeline) ExpireJob(ctx context.Context, id string, rev uint64) (bool, error) {
	return (&janitor{p: p}).expire(ctx, expiredJob{id: id, conversation: id, rev: rev,
		status: events.StatusCompleted, step: events.StepDone})
}

// ImportCrashed writes rec as Import does and stops where a crash right after
// the job's create would: no status event, no ticket.
func (p *Pipeline) ImportCrashed(ctx context.Context, rec events.ImportRecord) error {
	plan, err := p.planImport(&rec, false, time.Now().UTC())
	if err != nil {
		return err
	}
	_, err = p.writeImport(ctx, plan, 0, nil, 0)
	return err
}

// SweepReads runs the scan of a sweeper pass over the active index (the scan of
// every pass after a process's first) and returns the ids of the jobs it read.
func (p *Pipeline) SweepReads(ctx context.Context) ([]string, error) {
	var read []string
	s := &sweeper{p: p, indexed: true}
	err := s.scanIndex(ctx, time.Now(), func(id string, _ *events.Job, _ uint64, _ error) error {
		read = append(read, id)
		return nil
	})
	return read, err
}
