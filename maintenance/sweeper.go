package maintenance

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/wait"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
	"github.com/sheetpipe/sheetpipe/metrics"
)

const (
	// recoveredMessage is the status message of a job the sweeper handed back.
	recoveredMessage = "Recovered: worker lease expired"
	// orphanMessage is the status message of a job whose ticket was lost.
	orphanMessage = "Recovered: ticket lost"
	// sweepPassTimeout bounds one scan of the jobs bucket.
	sweepPassTimeout = time.Minute
	// sweepRequestTimeout bounds each request of a scan: a stream with no leader
	// (a node lost, an election) never answers, and without its own deadline a
	// request would wait for the whole pass's.
	sweepRequestTimeout = 5 * time.Second
	// rescueTimeout bounds the write and the ticket publish of one recovery.
	rescueTimeout = 10 * time.Second
)

// sweeper recovers jobs that no ticket will move again. A job stays running when
// its worker died and its ticket is gone (acked, dead-lettered or lost); a job
// stays pending, in error or waiting_ai_fix when its ticket was lost (a publish
// that failed for good after its write, a ticket dead-lettered under a live
// worker, a max-deliveries advisory nobody received). Every SweepInterval it
// scans the jobs bucket and hands each such job back to its stage as a new
// hand-off: a running job once its lease expired more than SweepGrace ago; a
// waiting job once it has been idle that long (plus the longest retry back-off
// for one in error) while its stage's queues hold no live ticket at all, so a
// job merely queued behind a backlog is never duplicated. It also re-evaluates
// every job waiting for its dependencies, in case its wake-up was lost. Any
// number of processes may sweep at once: the recovery is a compare-and-swap, so
// one wins and the others find the job no longer stuck.
//
// Its first pass reads every unfinished job and indexes any that the active
// index (kvstore.BucketActive) lacks; later passes read only the jobs that index
// names, removing the records of jobs that no longer have a stage.
type sweeper struct {
	cfg     SweeperConfig
	store   sweeperStore
	jobs    jobs
	js      jetstream.JetStream // the stages' consumers, to tell an idle stage
	log     *slog.Logger
	metrics *metrics.Metrics
	indexed bool // a full pass has indexed every unfinished job
	loop
}

// sweeperStore is what the sweeper reads and indexes (kvstore.Store).
type sweeperStore interface {
	Get(ctx context.Context, id string) (*events.Job, uint64, error)
	EachActive(ctx context.Context, fn func(kvstore.ActiveRecord) error) error
	EachUnfinishedJob(ctx context.Context, fn func(id string, j *events.Job, rev uint64, err error) error) error
	Activate(ctx context.Context, id string) (uint64, error)
	Deactivate(ctx context.Context, id string, rev uint64) error
}

// activeGrace is how old a record of the active index must be before the
// sweeper removes it for a job that is missing or has no stage while the record
// is not the job's own: the writer that put it is about to create or reopen the
// job.
const activeGrace = time.Minute

// start scans until stop; stop waits for a recovery in progress until its
// deadline, then cancels it.
func (s *sweeper) start(ctx context.Context) { s.loop.start(ctx, s.run) }

func (s *sweeper) run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
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
	var stuck, blocked []string
	var undecodable int
	// Read before the scan: a ticket published after this read belongs to a job
	// written after it, which is not idle long enough to be taken for lost.
	idle := s.idleStages(scanCtx)
	now := time.Now()
	visit := func(id string, j *events.Job, _ uint64, err error) error {
		switch {
		case err != nil:
			undecodable++
		case s.stuck(j, now, idle):
			stuck = append(stuck, id)
		case j.Blocked:
			blocked = append(blocked, id)
		}
		return nil
	}
	var err error
	if s.indexed {
		err = s.scanIndex(scanCtx, now, visit)
	} else if err = s.scanAll(scanCtx, visit); err == nil {
		s.indexed = true
	}
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "sweep jobs", "error", err)
	}
	if undecodable > 0 {
		s.log.WarnContext(ctx, "sweep skipped undecodable jobs", "count", undecodable)
	}
	for _, id := range stuck {
		if ctx.Err() != nil {
			return
		}
		if err := s.rescue(id, idle); err != nil {
			s.log.ErrorContext(ctx, "recover job", "job_id", id, "error", err)
		}
	}
	s.wake(ctx, blocked)
}

// scanAll visits every unfinished job, indexing each active one that the index
// lacks.
func (s *sweeper) scanAll(ctx context.Context, visit func(string, *events.Job, uint64, error) error) error {
	indexed := map[string]bool{}
	if err := s.store.EachActive(ctx, func(r kvstore.ActiveRecord) error {
		indexed[r.ID] = true
		return nil
	}); err != nil {
		return err
	}
	return s.store.EachUnfinishedJob(ctx, func(id string, j *events.Job, rev uint64, err error) error {
		if err == nil && j.Active() && !indexed[id] {
			if err := s.index(ctx, id); err != nil {
				return err
			}
		}
		return visit(id, j, rev, err)
	})
}

// index records job id in the active index and the record's revision on the job,
// so that the writer that settles it removes the record at once. The job's write
// changes no state: like a description's, it emits no event and keeps the
// revision a re-emitted event carries.
func (s *sweeper) index(ctx context.Context, id string) error {
	rec, err := s.store.Activate(ctx, id)
	if err != nil {
		return err
	}
	// A job settled meanwhile is left alone: the sweeper removes the record.
	_, _, err = s.jobs.Apply(ctx, id, lifecycle.Index(rec))
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil
	}
	return err
}

// scanIndex visits the jobs the active index names and removes the records of
// those no longer active (a removal the writer that settled them did not make).
func (s *sweeper) scanIndex(ctx context.Context, now time.Time, visit func(string, *events.Job, uint64, error) error) error {
	var records []kvstore.ActiveRecord
	if err := s.store.EachActive(ctx, func(r kvstore.ActiveRecord) error {
		records = append(records, r)
		return nil
	}); err != nil {
		return err
	}
	for _, r := range records {
		rctx, cancel := context.WithTimeout(ctx, sweepRequestTimeout)
		j, rev, err := s.store.Get(rctx, r.ID)
		cancel()
		settled := errors.Is(err, kvstore.ErrNotFound) || (err == nil && !j.Active())
		switch {
		case settled && ((err == nil && j.ActiveRev == r.Rev) || now.Sub(r.Written) > activeGrace):
			rctx, cancel := context.WithTimeout(ctx, sweepRequestTimeout)
			err := s.store.Deactivate(rctx, r.ID, r.Rev)
			cancel()
			if err != nil {
				return err
			}
		case settled:
		case err != nil && ctx.Err() != nil:
			return err
		default:
			if err := visit(r.ID, j, rev, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// wake re-evaluates the jobs that wait for their dependencies: the safety net
// for a wake-up that never came (a status event lost to a crash, or one whose
// deliveries ran out).
func (s *sweeper) wake(ctx context.Context, ids []string) {
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		wctx, cancel := context.WithTimeout(s.workCtx, rescueTimeout)
		err := s.jobs.Wake(wctx, id)
		cancel()
		if err != nil {
			s.log.WarnContext(ctx, "re-evaluate dependencies", "job_id", id, "error", err)
		}
	}
}

// idleStages reports, per stage, whether its queues hold no live ticket: none
// waiting, none delivered and unacknowledged (a ticket in a retry back-off counts
// as unacknowledged), on any of its priorities. A stage with a consumer that
// cannot be read is not idle.
func (s *sweeper) idleStages(ctx context.Context) map[events.Stage]bool {
	idle := map[events.Stage]bool{}
	for _, st := range events.Stages {
		idle[st] = s.idle(ctx, st)
	}
	return idle
}

// idle reports whether every queue of stage holds no live ticket.
func (s *sweeper) idle(ctx context.Context, st events.Stage) bool {
	for _, q := range events.QueuesOf(st) {
		if !s.queueIdle(ctx, q) {
			return false
		}
	}
	return true
}

// queueIdle reports whether queue q holds no live ticket; false when its
// consumer does not answer within sweepRequestTimeout.
func (s *sweeper) queueIdle(ctx context.Context, q events.Queue) bool {
	ctx, cancel := context.WithTimeout(ctx, sweepRequestTimeout)
	defer cancel()
	c, err := s.js.Consumer(ctx, events.StreamJobs, q.Durable())
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// stuck reports whether no ticket will move j again: it runs under a lease that
// expired more than the grace ago, long enough for a redelivered ticket to have
// taken it over, or it waits for a ticket its idle stage does not hold.
func (s *sweeper) stuck(j *events.Job, now time.Time, idle map[events.Stage]bool) bool {
	if !j.Stage.Valid() {
		return false
	}
	switch j.Status {
	case events.StatusRunning:
		since := j.LastChange()
		if j.Lease != nil {
			since = j.Lease.ExpiresAt
		}
		return now.Sub(since) > s.cfg.Grace
	case events.StatusPending, events.StatusWaitingAIFix:
		return idle[j.Stage] && now.Sub(j.LastChange()) > s.cfg.Grace
	case events.StatusError:
		return idle[j.Stage] && now.Sub(j.LastChange()) > s.cfg.Grace+s.cfg.RetryMax
	}
	return false
}

// rescue hands a stuck job back to its stage: under a new sequence (so an old
// ticket of it is stale), without lease, at the same step, pending (or still
// waiting_ai_fix), and publishes the new ticket. It does nothing when the job is
// no longer stuck.
func (s *sweeper) rescue(id string, idle map[events.Stage]bool) error {
	ctx, cancel := context.WithTimeout(s.workCtx, rescueTimeout)
	defer cancel()
	stuck := func(j *events.Job, now time.Time) bool { return s.stuck(j, now, idle) }
	j, _, err := s.jobs.Apply(ctx, id, lifecycle.Recover(stuck, orphanMessage, recoveredMessage))
	switch {
	case errors.Is(err, lifecycle.ErrStale), errors.Is(err, kvstore.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	s.log.WarnContext(ctx, "job recovered", "job_id", j.ID, "step", j.Stage, "seq", j.Seq)
	s.metrics.Recovered(string(j.Stage))
	return s.publish(ctx, j)
}

// publish publishes the recovered job's ticket, retrying with a short back-off
// until ctx ends: no redelivered ticket would re-publish it if it were lost.
func (s *sweeper) publish(ctx context.Context, j *events.Job) error {
	delay := 50 * time.Millisecond
	for {
		err := s.jobs.HandOn(ctx, j)
		if err == nil {
			return nil
		}
		s.log.WarnContext(ctx, "publish recovered ticket", "job_id", j.ID, "step", j.Stage, "error", err)
		if !wait.Sleep(ctx, delay) {
			return err
		}
		delay = min(2*delay, time.Second)
	}
}
