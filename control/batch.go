package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// batchConcurrency bounds the jobs of one batch created or read at once.
const batchConcurrency = 16

// SubmitBatch validates a batch and creates its jobs, each as Submit does; it
// returns their ids once every job is stored. Nothing is written when a request
// is invalid, a job id it names belongs to a different request, or the batch
// would take the unfinished jobs over a queue limit (events.QueueFullError).
//
// It is idempotent per batch id: the ids are fixed before anything is written,
// the batch record is stored first and the jobs after it, so a batch sent again
// (after a crash, a timeout or a lost reply) creates the jobs still missing and
// returns the same ids. The same batch id with other jobs is refused with
// ErrConflict.
func (p *Plane) SubmitBatch(ctx context.Context, b events.BatchRequest) (events.BatchReply, error) {
	if err := b.Validate(*p.cfg.MaxRetries); err != nil {
		return events.BatchReply{}, err
	}
	for i := range b.Jobs {
		probe := b.Jobs[i]
		if err := probe.ValidateTokenBudget(p.cfg.TokenBudget); err != nil {
			return events.BatchReply{}, fmt.Errorf("%w: %s: %s", events.ErrInvalid, b.Where(i), strings.TrimPrefix(err.Error(), events.ErrInvalid.Error()+": "))
		}
	}
	ids, err := b.Assign()
	if err != nil {
		return events.BatchReply{}, err
	}
	digest, err := b.Digest()
	if err != nil {
		return events.BatchReply{}, err
	}
	// A new batch is counted against the queue limits whole, before anything
	// is stored; one sent again (its record exists) counts each job it still
	// creates, as Submit does.
	_, _, err = p.store.Batch(ctx, b.BatchID)
	fresh := errors.Is(err, kvstore.ErrNotFound)
	if err != nil && !fresh {
		return events.BatchReply{}, fmt.Errorf("load batch %s: %w", b.BatchID, err)
	}
	users := map[string]int{}
	if fresh {
		for _, req := range b.Jobs {
			users[req.UserID]++
		}
		if err := p.admit(ctx, users); err != nil {
			return events.BatchReply{}, err
		}
	}
	// settled[i]: job i's submit ran and settled its own count.
	settled := make([]bool, len(b.Jobs))
	defer func() {
		for i, done := range settled {
			if fresh && !done {
				p.release(ctx, b.Jobs[i].UserID, 1)
			}
		}
	}()
	if err := p.recordBatch(ctx, &b, ids, digest); err != nil {
		return events.BatchReply{}, err
	}
	err = forEach(ctx, len(b.Jobs), func(ctx context.Context, i int) error {
		settled[i] = true
		if _, err := p.submit(ctx, b.Jobs[i], b.BatchID, fresh); err != nil {
			return fmt.Errorf("batch %s, %s: %w", b.BatchID, b.Where(i), err)
		}
		return nil
	})
	if err != nil {
		return events.BatchReply{}, err
	}
	p.log.InfoContext(ctx, "batch submitted", "batch_id", b.BatchID, "jobs", len(ids))
	return events.BatchReply{BatchID: b.BatchID, JobIDs: ids}, nil
}

// recordBatch stores the batch's record unless it exists; an existing record
// must have the same digest.
func (p *Plane) recordBatch(ctx context.Context, b *events.BatchRequest, ids []string, digest string) error {
	rec, _, err := p.store.Batch(ctx, b.BatchID)
	switch {
	case err == nil:
		return sameBatch(rec, digest)
	case !errors.Is(err, kvstore.ErrNotFound):
		return fmt.Errorf("load batch %s: %w", b.BatchID, err)
	}
	if err := p.checkJobsFree(ctx, b); err != nil {
		return err
	}
	_, err = p.store.CreateBatch(ctx, &kvstore.Batch{ID: b.BatchID, JobIDs: ids, Digest: digest})
	if errors.Is(err, kvstore.ErrExists) { // the same batch id sent concurrently
		if rec, _, err = p.store.Batch(ctx, b.BatchID); err != nil {
			return fmt.Errorf("load batch %s: %w", b.BatchID, err)
		}
		return sameBatch(rec, digest)
	}
	if err != nil {
		return fmt.Errorf("create batch %s: %w", b.BatchID, err)
	}
	return nil
}

func sameBatch(rec *kvstore.Batch, digest string) error {
	if rec.Digest != digest {
		return fmt.Errorf("%w: batch %s already exists with different jobs", events.ErrConflict, rec.ID)
	}
	return nil
}

// checkJobsFree refuses a new batch naming a job id that an existing job of a
// different request has, before the batch is recorded.
func (p *Plane) checkJobsFree(ctx context.Context, b *events.BatchRequest) error {
	return forEach(ctx, len(b.Jobs), func(ctx context.Context, i int) error {
		req := b.Jobs[i]
		j, _, err := p.store.Get(ctx, req.JobID)
		switch {
		case errors.Is(err, kvstore.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("load job %s: %w", req.JobID, err)
		case !sameRequest(j, req):
			return fmt.Errorf("%w: %s: job %s already exists with a different request", events.ErrConflict, b.Where(i), req.JobID)
		}
		return nil
	})
}

// Batch returns the aggregate status of batch id, reading each of its jobs.
func (p *Plane) Batch(ctx context.Context, id string) (events.BatchStatus, error) {
	id, err := events.BatchIDOf(id)
	if err != nil {
		return events.BatchStatus{}, err
	}
	rec, _, err := p.store.Batch(ctx, id)
	if errors.Is(err, kvstore.ErrNotFound) {
		return events.BatchStatus{}, &events.ControlError{Code: events.CodeNotFound, Message: "unknown batch: no batch " + id}
	}
	if err != nil {
		return events.BatchStatus{}, fmt.Errorf("load batch %s: %w", id, err)
	}
	jobs := make([]events.BatchJob, len(rec.JobIDs))
	err = forEach(ctx, len(jobs), func(ctx context.Context, i int) error {
		jobs[i] = events.BatchJob{JobID: rec.JobIDs[i], Status: events.StatusMissing}
		j, rev, err := p.store.Get(ctx, rec.JobIDs[i])
		switch {
		case errors.Is(err, kvstore.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("batch %s: load job %s: %w", id, rec.JobIDs[i], err)
		}
		jobs[i] = events.BatchJob{JobID: j.ID, Status: j.Status, Step: j.CurrentStep, Revision: rev}
		return nil
	})
	if err != nil {
		return events.BatchStatus{}, err
	}
	return events.NewBatchStatus(id, rec.CreatedAt, jobs), nil
}

// forEach runs fn for 0..n-1, batchConcurrency at a time, and returns the first
// error. Once one fails, the others are cancelled and those not yet started
// skipped.
func forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, batchConcurrency)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
