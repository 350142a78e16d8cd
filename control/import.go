package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// importConcurrency bounds the records of one import request stored at once.
const importConcurrency = 16

// ImportedMessage is the message of the one status event an imported job
// publishes.
const ImportedMessage = "Imported from the old store"

// Import imports a chunk of the old pipeline's records (sheetctl import). Each
// record is checked and mapped on its own: one that cannot be imported is
// refused with its reason and the others are imported. A job whose id exists is
// skipped and never changed, unless req.Overwrite and the job is an import
// nothing wrote since. A record is stored conversation first, then its PDF, then
// the job (with kv.Create): a job that exists is complete, and a re-run
// completes a record an interrupted run left without its job. Each imported job
// publishes one status event, ImportedMessage, and a resumed one is handed to
// its stage; a re-run that skips an untouched import publishes them again, in
// case the earlier run stopped between the job and them (announceAgain). With
// req.DryRun nothing is written and the reply says what an import would do.
func (p *Plane) Import(ctx context.Context, req events.ImportRequest) (events.ImportReply, error) {
	switch n := len(req.Records); {
	case n == 0:
		return events.ImportReply{}, fmt.Errorf("%w: an import needs at least one record", events.ErrInvalid)
	case n > events.MaxImportRecords:
		return events.ImportReply{}, fmt.Errorf("%w: %d records, more than the %d one import request may hold", events.ErrInvalid, n, events.MaxImportRecords)
	}
	reply := events.ImportReply{DryRun: req.DryRun, Results: make([]events.ImportResult, len(req.Records))}
	now := time.Now().UTC()
	sem := make(chan struct{}, importConcurrency)
	var wg sync.WaitGroup
	for i := range req.Records {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			reply.Results[i] = p.importRecord(ctx, req, &req.Records[i], now)
		})
	}
	wg.Wait()
	return reply, nil
}

// importRecord imports one record and says what became of it.
func (p *Plane) importRecord(ctx context.Context, req events.ImportRequest, rec *events.ImportRecord, now time.Time) events.ImportResult {
	res := events.ImportResult{JobID: rec.Job.ID, Source: rec.Source, OldStatus: rec.Job.Status}
	refuse := func(format string, args ...any) events.ImportResult {
		res.Outcome, res.Reason = events.ImportRefused, fmt.Sprintf(format, args...)
		return res
	}
	plan, err := p.planImport(rec, req.RecompileMissing, now)
	if err != nil {
		return refuse("%s", strings.TrimPrefix(err.Error(), events.ErrInvalid.Error()+": "))
	}
	j, conv := plan.job, plan.conv
	res.JobID, res.Note = j.ID, plan.note
	old, oldRev, err := p.store.Get(ctx, j.ID)
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		old = nil
	case err != nil:
		return refuse("read job: %v (run the import again)", err)
	case !req.Overwrite || !old.UntouchedImport():
		res.Outcome, res.Status, res.Step = events.ImportSkipped, old.Status, old.CurrentStep
		res.Reason, res.Note = skipReason(old, req.Overwrite), ""
		if !req.DryRun && old.UntouchedImport() {
			res.Note = p.announceAgain(ctx, old, oldRev, sameImport(old, j))
		}
		return res
	default:
		res.Overwritten = true
		j.Seq = old.Seq + 1 // a new hand-off: a ticket of the old import is stale
		if j.LatexSeq != 0 {
			j.LatexSeq = j.Seq
		}
	}
	convRev, err := p.importableConversation(ctx, conv)
	if err != nil {
		return refuse("%v", err)
	}
	res.Outcome, res.Status, res.Step, res.Stage = events.ImportImported, j.Status, j.CurrentStep, j.Stage
	if j.Active() {
		res.Outcome = events.ImportResumed
	}
	if req.DryRun {
		return res
	}
	if err := p.storeImport(ctx, plan, convRev, old, oldRev); err != nil {
		if errors.Is(err, kvstore.ErrExists) || errors.Is(err, kvstore.ErrConflict) {
			res.Outcome, res.Stage, res.Overwritten = events.ImportSkipped, "", false
			res.Reason = "the job was written meanwhile by someone else"
			return res
		}
		return refuse("%v (run the import again)", err)
	}
	return res
}

// skipReason says why an existing job old was not imported over.
func skipReason(old *events.Job, overwrite bool) string {
	switch {
	case !overwrite:
		return "a job with this id exists (it is never overwritten without --overwrite)"
	case old.Imported == nil:
		return "a job with this id exists and was not imported: --overwrite replaces only untouched imports"
	}
	return "the job was imported before and has changed since: --overwrite replaces only untouched imports"
}

// importableConversation checks that conversation c may be written: its id is
// free (revision 0) or holds a conversation of the same job, which an import
// left (its revision, to replace it). Another job's conversation is refused.
func (p *Plane) importableConversation(ctx context.Context, c *events.Conversation) (uint64, error) {
	stored, rev, err := p.store.Conversation(ctx, c.ID)
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read conversation %s: %v (run the import again)", c.ID, err)
	case stored.JobID != c.JobID:
		return 0, fmt.Errorf("conversation id %s is taken by job %s", c.ID, stored.JobID)
	}
	return rev, nil
}

// announceAgain re-publishes what an earlier run may have stopped before, for
// an untouched import old stored at rev: its ticket, and, when same says the
// stored job is what this run would write, its status event. The event keeps
// its revision and so its dedupe id (Nats-Msg-Id): inside JOB_EVENTS'
// duplicates window the stream drops it when the first run did publish it;
// outside, it is stored again with the same revision, which consumers of
// events recognise. It returns a note for the report, "" when all went well.
func (p *Plane) announceAgain(ctx context.Context, old *events.Job, rev uint64, same bool) string {
	if same {
		if err := p.publishImported(ctx, old, rev); err != nil {
			return fmt.Sprintf("its event could not be published again: %v", err)
		}
	}
	if err := p.x.HandOn(ctx, old); err != nil {
		return fmt.Sprintf("its ticket could not be published again: %v", err)
	}
	return ""
}

// sameImport reports whether the stored job old is what this run's plan j
// would write: equal in every field but the time of the import and the
// bookkeeping of where it was stored (its active index record, the hand-off
// an --overwrite numbered, the incarnation its create drew).
func sameImport(old, j *events.Job) bool {
	c := *j
	c.ImportedAt, c.ActiveRev, c.Seq, c.LatexSeq, c.Incarnation = old.ImportedAt, old.ActiveRev, old.Seq, old.LatexSeq, old.Incarnation
	a, errA := json.Marshal(&c)
	b, errB := json.Marshal(old)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// storeImport writes the planned record (writeImport), then publishes its
// event and ticket.
func (p *Plane) storeImport(ctx context.Context, plan *importPlan, convRev uint64, old *events.Job, oldRev uint64) error {
	j := plan.job
	rev, err := p.writeImport(ctx, plan, convRev, old, oldRev)
	if err != nil {
		return err
	}
	ctx, cancel := afterWrite(ctx)
	defer cancel()
	p.emitImported(ctx, j, rev)
	p.log.InfoContext(ctx, "job imported", "job_id", j.ID, "status", j.Status, "step", j.CurrentStep, "old_status", j.Imported.Status)
	if err := p.x.HandOn(ctx, j); err != nil {
		return fmt.Errorf("job %s is stored but not yet handed on (the sweeper will): %w", j.ID, err)
	}
	return nil
}

// writeImport writes the planned record: conversation, PDF, then the job
// (created, or replacing old at oldRev), and returns the job's revision.
func (p *Plane) writeImport(ctx context.Context, plan *importPlan, convRev uint64, old *events.Job, oldRev uint64) (uint64, error) {
	j := plan.job
	if _, err := p.store.PutImportedConversation(ctx, plan.conv, convRev); err != nil {
		return 0, fmt.Errorf("store conversation %s: %w", plan.conv.ID, err)
	}
	if plan.pdf != nil {
		if _, err := p.pdfs.PutBytes(ctx, j.ID+".pdf", plan.pdf); err != nil {
			return 0, fmt.Errorf("store pdf %s: %w", j.ID, err)
		}
	}
	return p.x.Import(ctx, j, old, oldRev)
}

// emitImported publishes the imported job's status event, stamped with the time
// of the import rather than the old updated_at the job keeps.
func (p *Plane) emitImported(ctx context.Context, j *events.Job, rev uint64) {
	if err := p.publishImported(ctx, j, rev); err != nil {
		if p.metrics != nil {
			p.metrics.EventPublishErrs.Inc()
		}
		p.log.ErrorContext(ctx, "publish status event", "job_id", j.ID, "status", j.Status, "error", err)
	}
}

// publishImported publishes the status event of imported job j at revision rev,
// with its dedupe id.
func (p *Plane) publishImported(ctx context.Context, j *events.Job, rev uint64) error {
	ev := j.Event(rev)
	ev.Time = j.ImportedAt
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event of %s: %w", j.ID, err)
	}
	return lifecycle.JetStream{JS: p.js}.Publish(ctx, events.SubjectStatus, data, ev.MsgID(), false)
}

// StoreImported stores rec's job as Import does and stops where a crash right
// after the job's store would: no status event, no ticket. An Import of the
// same record then announces it. The tests of that recovery use it.
func (p *Plane) StoreImported(ctx context.Context, rec events.ImportRecord) error {
	plan, err := p.planImport(&rec, false, time.Now().UTC())
	if err != nil {
		return err
	}
	_, err = p.writeImport(ctx, plan, 0, nil, 0)
	return err
}
