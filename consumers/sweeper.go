package consumers

import (
	"context"
	"errors"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

const (
	// recoveredMessage is the status message of a job the sweeper handed back.
	recoveredMessage = "Recovered: worker lease expired"
	// sweepPassTimeout bounds one scan of the jobs bucket.
	sweepPassTimeout = time.Minute
	// rescueTimeout bounds the write and the ticket publish of one recovery.
	rescueTimeout = 10 * time.Second
)

// sweeper recovers jobs that no ticket will move again: a job stays running when
// its worker died and its ticket is gone (acked, dead-lettered or lost). Every
// SweepInterval it scans the jobs bucket and hands each job whose lease expired
// more than SweepGrace ago back to its stage as a new hand-off. Any number of
// processes may sweep at once: the recovery is a compare-and-swap, so one wins
// and the others find the job no longer stuck.
type sweeper struct {
	p *Pipeline
	loop
}

// start scans until stop; stop waits for a recovery in progress until its
// deadline, then cancels it.
func (s *sweeper) start(ctx context.Context) { s.loop.start(ctx, s.run) }

func (s *sweeper) run(ctx context.Context) {
	t := time.NewTicker(s.p.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep(ctx)
		}
	}
}

// sweep makes one pass: it streams the bucket once, collecting the stuck jobs,
// then recovers them one by one.
func (s *sweeper) sweep(ctx context.Context) {
	scanCtx, cancel := context.WithTimeout(ctx, sweepPassTimeout)
	defer cancel()
	var stuck []string
	var undecodable int
	now := time.Now()
	err := s.p.store.EachJob(scanCtx, func(id string, j *kvstore.Job, err error) error {
		switch {
		case err != nil:
			undecodable++
		case s.stuck(j, now):
			stuck = append(stuck, id)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.p.log.WarnContext(ctx, "sweep jobs", "error", err)
	}
	if undecodable > 0 {
		s.p.log.WarnContext(ctx, "sweep skipped undecodable jobs", "count", undecodable)
	}
	for _, id := range stuck {
		if ctx.Err() != nil {
			return
		}
		if err := s.rescue(id); err != nil {
			s.p.log.ErrorContext(ctx, "recover job", "job_id", id, "error", err)
		}
	}
}

// stuck reports whether j runs under a lease that expired more than the grace ago,
// long enough for a redelivered ticket to have taken it over.
func (s *sweeper) stuck(j *kvstore.Job, now time.Time) bool {
	if j.Status != events.StatusRunning || !j.Stage.Valid() {
		return false
	}
	since := j.UpdatedAt
	if j.Lease != nil {
		since = j.Lease.ExpiresAt
	}
	return now.Sub(since) > s.p.cfg.SweepGrace
}

// rescue hands a stuck job back to its stage: pending under a new sequence (so an
// old ticket of it is stale), without lease, at the same step, and publishes the
// new ticket. It does nothing when the job is no longer stuck.
func (s *sweeper) rescue(id string) error {
	ctx, cancel := context.WithTimeout(s.workCtx, rescueTimeout)
	defer cancel()
	j, err := s.p.apply(ctx, id, func(j *kvstore.Job) error {
		if !s.stuck(j, time.Now()) {
			return ErrStale
		}
		j.Status = events.StatusPending
		j.Seq++
		j.Lease = nil
		j.Message = recoveredMessage
		return nil
	})
	switch {
	case errors.Is(err, ErrStale), errors.Is(err, kvstore.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	s.p.log.WarnContext(ctx, "job recovered", "job_id", j.ID, "step", j.Stage, "seq", j.Seq)
	s.p.metrics.Recovered(string(j.Stage))
	return s.publish(ctx, j)
}

// publish publishes the recovered job's ticket, retrying with a short back-off
// until ctx ends: no redelivered ticket would re-publish it if it were lost.
func (s *sweeper) publish(ctx context.Context, j *kvstore.Job) error {
	delay := 50 * time.Millisecond
	for {
		err := s.p.publishTicket(ctx, j)
		if err == nil {
			return nil
		}
		s.p.log.WarnContext(ctx, "publish recovered ticket", "job_id", j.ID, "step", j.Stage, "error", err)
		if !sleep(ctx, delay) {
			return err
		}
		delay = min(2*delay, time.Second)
	}
}

// sleep waits d and reports whether it did so before ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
