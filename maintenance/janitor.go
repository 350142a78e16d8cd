package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/wait"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

const (
	// janitorScanTimeout bounds one scan of the jobs bucket, the conversations
	// bucket or the object store.
	janitorScanTimeout = 10 * time.Minute
	// deleteTimeout bounds the deletion of one job with its conversation and PDF.
	deleteTimeout = 10 * time.Second
)

// janitor deletes finished jobs once they have not changed for the retention,
// with their conversation and PDF. A finished job is one no stage will act on
// without a user: completed, aborted, waiting_manual, and error at step prompt
// (an invalid request). A job that is pending, running, waiting_ai_fix or in
// error at a later step is never touched, whatever its age.
//
// Every process runs one, each pass after a jittered wait so that processes
// spread their scans. A pass streams the jobs bucket once, then deletes each
// expired job with a purge guarded by the revision it read: a job a user changed
// since (a retry or refinement) is kept, and of several janitors deleting the
// same job exactly one succeeds. The conversation and the PDF go next; a crash
// in between leaves them without a job, so the pass ends by deleting
// conversations and PDFs whose job is gone and that are older than the
// retention, and removes the markers that deletions older than the retention
// left in the buckets.
type janitor struct {
	cfg     JanitorConfig
	store   janitorStore
	jobs    jobs
	pdfs    pdfStore
	log     *slog.Logger
	metrics *metrics.Metrics
	loop
}

// janitorStore is what the janitor reads and deletes (kvstore.Store).
type janitorStore interface {
	EachJob(ctx context.Context, fn func(id string, j *events.Job, rev uint64, err error) error) error
	EachConversation(ctx context.Context, fn func(id string, rev uint64, updated time.Time) error) error
	DeleteConversation(ctx context.Context, id string, rev uint64) error
	PurgeMarkers(ctx context.Context, cutoff time.Time) (int, error)
}

// pdfStore is what the janitor needs of the object store of PDFs.
type pdfStore interface {
	List(ctx context.Context, opts ...jetstream.ListObjectsOpt) ([]*jetstream.ObjectInfo, error)
	Delete(ctx context.Context, name string) error
}

// expiredJob is what a scan keeps of a job to delete.
type expiredJob struct {
	id           string
	conversation string
	status       events.Status
	step         events.Step
	updated      time.Time
	rev          uint64
}

// cleanup counts what one pass deleted.
type cleanup struct {
	jobs, conversations, pdfs int
}

// start runs passes until stop; stop waits for a deletion in progress until its
// deadline, then cancels it.
func (jn *janitor) start(ctx context.Context) { jn.loop.start(ctx, jn.run) }

func (jn *janitor) run(ctx context.Context) {
	for wait.Sleep(ctx, jn.wait()) {
		if _, err := jn.pass(ctx, jn.workCtx); err != nil && ctx.Err() == nil {
			jn.log.WarnContext(ctx, "janitor pass", "error", err)
		}
	}
}

// wait is JanitorInterval jittered by ±50%.
func (jn *janitor) wait() time.Duration {
	d := jn.cfg.Interval
	return d/2 + rand.N(d)
}

// pass makes one pass: the jobs first, then the orphans, which it only looks for
// after a complete scan of the jobs. stop ends it between two deletions; work
// bounds the deletions themselves.
func (jn *janitor) pass(stop, work context.Context) (cleanup, error) {
	var done cleanup
	cutoff := time.Now().Add(-*jn.cfg.Retention)
	expired, inUse, err := jn.scanJobs(stop, cutoff)
	if err != nil {
		return done, err
	}
	var errs []error
	for _, x := range expired {
		if stop.Err() != nil {
			return done, stop.Err()
		}
		deleted, err := jn.expire(work, x)
		if deleted {
			done.jobs++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	n, err := jn.orphanConversations(stop, work, cutoff, inUse)
	done.conversations += n
	errs = append(errs, err)
	n, err = jn.orphanPDFs(stop, work, cutoff, inUse)
	done.pdfs += n
	errs = append(errs, err)
	errs = append(errs, jn.purgeMarkers(stop, cutoff))
	return done, errors.Join(errs...)
}

// scanJobs streams the jobs bucket once and returns the finished jobs last
// changed before cutoff and the ids in use: every job's key and conversation id.
// A job that does not decode is in use and never expired.
func (jn *janitor) scanJobs(ctx context.Context, cutoff time.Time) ([]expiredJob, map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, janitorScanTimeout)
	defer cancel()
	var expired []expiredJob
	inUse := map[string]bool{}
	err := jn.store.EachJob(ctx, func(id string, j *events.Job, rev uint64, err error) error {
		inUse[id] = true
		if err != nil {
			return nil
		}
		inUse[j.ConversationID] = true
		// An imported job keeps the old store's updated_at: its age counts from
		// its import when that is later.
		if events.Finished(j.Status, j.CurrentStep) && j.LastChange().Before(cutoff) {
			expired = append(expired, expiredJob{id: id, conversation: j.ConversationID,
				status: j.Status, step: j.CurrentStep, updated: j.LastChange(), rev: rev})
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("janitor: %w", err)
	}
	return expired, inUse, nil
}

// expire deletes job x if it is still at the revision the scan read, then its
// conversation and PDF. It reports whether it deleted the job; a job changed or
// deleted since the scan is kept (or left to whoever deleted it) without error.
func (jn *janitor) expire(ctx context.Context, x expiredJob) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, deleteTimeout)
	defer cancel()
	err := jn.jobs.Expire(ctx, x.id, x.status, x.step, x.rev)
	if errors.Is(err, kvstore.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("janitor: %w", err)
	}
	jn.metrics.JobDeleted()
	jn.log.InfoContext(ctx, "job deleted", "job_id", x.id, "status", x.status, "updated_at", x.updated)
	var errs []error
	if x.conversation != "" {
		if err := jn.store.DeleteConversation(ctx, x.conversation, 0); err != nil {
			errs = append(errs, fmt.Errorf("janitor: conversation of job %s: %w", x.id, err))
		}
	}
	if err := jn.deletePDF(ctx, x.id+".pdf"); err != nil {
		errs = append(errs, fmt.Errorf("janitor: pdf of job %s: %w", x.id, err))
	}
	return true, errors.Join(errs...)
}

// deletePDF deletes a PDF object; one already gone is no error.
func (jn *janitor) deletePDF(ctx context.Context, name string) error {
	err := jn.pdfs.Delete(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return err
}

// orphanConversations deletes the conversations not in use and last written
// before cutoff; one written since the scan is kept.
func (jn *janitor) orphanConversations(stop, work context.Context, cutoff time.Time, inUse map[string]bool) (int, error) {
	type conv struct {
		id  string
		rev uint64
	}
	var orphans []conv
	scanCtx, cancel := context.WithTimeout(stop, janitorScanTimeout)
	defer cancel()
	err := jn.store.EachConversation(scanCtx, func(id string, rev uint64, updated time.Time) error {
		if !inUse[id] && updated.Before(cutoff) {
			orphans = append(orphans, conv{id, rev})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("janitor: %w", err)
	}
	n := 0
	for _, c := range orphans {
		if stop.Err() != nil {
			return n, stop.Err()
		}
		ctx, cancel := context.WithTimeout(work, deleteTimeout)
		err := jn.store.DeleteConversation(ctx, c.id, c.rev)
		cancel()
		switch {
		case errors.Is(err, kvstore.ErrConflict):
		case err != nil:
			return n, fmt.Errorf("janitor: orphan conversation: %w", err)
		default:
			n++
			jn.log.InfoContext(work, "orphan conversation deleted", "conversation_id", c.id)
		}
	}
	return n, nil
}

// purgeMarkers removes the markers deletions made before cutoff left in the
// buckets.
func (jn *janitor) purgeMarkers(ctx context.Context, cutoff time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, janitorScanTimeout)
	defer cancel()
	n, err := jn.store.PurgeMarkers(ctx, cutoff)
	if n > 0 {
		jn.log.DebugContext(ctx, "deletion markers purged", "count", n)
	}
	if err != nil {
		return fmt.Errorf("janitor: %w", err)
	}
	return nil
}

// orphanPDFs deletes the PDF objects "<id>.pdf" whose id is not in use and that
// were written before cutoff.
func (jn *janitor) orphanPDFs(stop, work context.Context, cutoff time.Time, inUse map[string]bool) (int, error) {
	scanCtx, cancel := context.WithTimeout(stop, janitorScanTimeout)
	defer cancel()
	infos, err := jn.pdfs.List(scanCtx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("janitor: list pdfs: %w", err)
	}
	n := 0
	for _, info := range infos {
		id, ok := strings.CutSuffix(info.Name, ".pdf")
		if !ok || inUse[id] || !info.ModTime.Before(cutoff) {
			continue
		}
		if stop.Err() != nil {
			return n, stop.Err()
		}
		ctx, cancel := context.WithTimeout(work, deleteTimeout)
		err := jn.deletePDF(ctx, info.Name)
		cancel()
		if err != nil {
			return n, fmt.Errorf("janitor: orphan pdf %s: %w", info.Name, err)
		}
		n++
		jn.log.InfoContext(work, "orphan pdf deleted", "job_id", id)
	}
	return n, nil
}
