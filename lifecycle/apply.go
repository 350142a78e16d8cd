package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/wait"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// Publisher sends one message to JetStream with a dedupe id. ticket says
// whether it is a stage's ticket (else a status event). A stage's publisher
// may send without waiting for the acknowledgement, which its runner then
// collects before it acks the stage's own ticket.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, msgID string, ticket bool) error
}

// Executor writes transitions: every change of a job in sheetpipe is one of
// its Apply (or Create, for a new job), so that each is checked against the
// table, written with a CAS on the job's revision and, when it changes the
// job's state, followed by exactly one status event.
type Executor struct {
	store   *kvstore.Store
	pub     Publisher
	log     *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time
}

// NewExecutor writes through store and publishes through pub; log and m may be
// nil.
func NewExecutor(store *kvstore.Store, pub Publisher, log *slog.Logger, m *metrics.Metrics) *Executor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Executor{store: store, pub: pub, log: log, metrics: m, now: time.Now}
}

// Store is the store the executor writes to, for reads.
func (x *Executor) Store() *kvstore.Store { return x.store }

// Option tunes one Apply.
type Option func(*applyOptions)

type applyOptions struct {
	from    *events.Job
	fromRev uint64
	at      *uint64
	before  func(events.Job)
}

// Before calls fn with the job as it was before the transition, once the
// transition is written.
func Before(fn func(events.Job)) Option {
	return func(o *applyOptions) { o.before = fn }
}

// From starts the write from j, a value of the job the caller holds at
// revision rev, instead of reading it first (nil j: read).
func From(j *events.Job, rev uint64) Option {
	return func(o *applyOptions) { o.from, o.fromRev = j, rev }
}

// AtRevision applies the transition only to the job at revision rev (a user's
// if_revision): at any other the write is refused with a *events.StaleError
// naming the current revision, and nothing is written or published.
func AtRevision(rev uint64) Option {
	return func(o *applyOptions) { o.at = &rev }
}

// Apply makes transition t on job id: a CAS write of the changed job, checked
// against the table (an illegal change is an *IllegalError and writes
// nothing), then, for a change of state, its status event. An error from the
// transition writes nothing and is returned with the job as read (ErrNoChange
// included, so that callers can tell).
func (x *Executor) Apply(ctx context.Context, id string, t Transition, opts ...Option) (*events.Job, uint64, error) {
	var o applyOptions
	for _, opt := range opts {
		opt(&o)
	}
	var kopts []kvstore.UpdateOption
	if o.from != nil {
		kopts = append(kopts, kvstore.From(o.from, o.fromRev))
	}
	if o.at != nil {
		kopts = append(kopts, kvstore.AtRevision(*o.at))
	}
	if t.spec.Kind == Quiet {
		kopts = append(kopts, kvstore.KeepEvent())
	}
	var before events.Status
	var unchanged bool
	var was events.Job
	change := func(j *events.Job) error {
		before = j.Status
		was = *j
		err := t.change(j, x.now())
		unchanged = errors.Is(err, ErrNoChange)
		if err != nil {
			return err
		}
		if err := x.check(t.spec, &was, j); err != nil {
			return err
		}
		if t.spec != specRecover && j.Seq != was.Seq {
			j.RecoveredFrom = 0 // a new hand-off of another kind: new input
		}
		if t.spec.Kind == StateChange {
			j.EventRev = 0 // this write has its event
		}
		return nil
	}
	write := x.store.Update
	if t.spec == specDescribe {
		write = x.store.Describe // a write kvstore checks touches only the meta fields
	}
	j, rev, err := write(ctx, id, change, kopts...)
	if err == nil && !unchanged && o.before != nil {
		o.before(was)
	}
	if err != nil || unchanged || t.spec.Kind != StateChange {
		return j, rev, err
	}
	x.Emit(ctx, j, rev, before)
	return j, rev, nil
}

// check is the table's verdict on spec taking was to j. A write that is not a
// change of state keeps status, step and hand-off as they were.
func (x *Executor) check(spec *Spec, was, j *events.Job) error {
	if err := spec.check(j.ID, was.Status, j.Status); err != nil {
		return err
	}
	if spec.Kind != StateChange && (j.Status != was.Status || j.CurrentStep != was.CurrentStep ||
		j.Stage != was.Stage || j.Seq != was.Seq || j.Resume != was.Resume) {
		return &IllegalError{JobID: j.ID, Transition: spec.Name + " (changes no state)", From: was.Status, To: j.Status}
	}
	return nil
}

// Create stores j, a new job as Accept or Reject built it, checked against the
// table; it fails with kvstore.ErrExists when the id is taken. Created then
// publishes its first event: the two are apart so that the pipeline's fault
// tests can stop a process between them.
func (x *Executor) Create(ctx context.Context, j *events.Job) (uint64, error) {
	if err := specSubmit.check(j.ID, none, j.Status); err != nil {
		return 0, err
	}
	return x.store.Create(ctx, j)
}

// Created counts job j, created at rev, and publishes its first event.
func (x *Executor) Created(ctx context.Context, j *events.Job, rev uint64) {
	if x.metrics != nil {
		x.metrics.JobsSubmitted.Inc()
	}
	x.Emit(ctx, j, rev, none)
}

// Import stores j, a job of the old system, as new, or in place of old, the
// job at rev that an earlier import stored (see kvstore.Store.ReplaceImported);
// it publishes no event (the import reports what it stored).
func (x *Executor) Import(ctx context.Context, j, old *events.Job, rev uint64) (uint64, error) {
	from := none
	if old != nil {
		from = old.Status
	}
	if err := specImport.check(j.ID, from, j.Status); err != nil {
		return 0, err
	}
	if old != nil {
		return x.store.ReplaceImported(ctx, j, old, rev)
	}
	return x.store.CreateImported(ctx, j)
}

// Expire deletes job id, finished in status at step at revision rev (as a scan
// read it): the purge is guarded by rev, so a job changed since is kept
// (kvstore.ErrConflict). A job that is not finished is never deleted.
func (x *Executor) Expire(ctx context.Context, id string, status events.Status, step events.Step, rev uint64) error {
	if !events.Finished(status, step) {
		return &IllegalError{JobID: id, Transition: specExpire.Name, From: status, To: none}
	}
	return x.store.Delete(ctx, id, rev)
}

// Emit publishes the status event of j at rev and counts a job that just
// finished (before is its status before the write).
func (x *Executor) Emit(ctx context.Context, j *events.Job, rev uint64, before events.Status) {
	ev := j.Event(rev)
	if before != j.Status && ev.Final() && x.metrics != nil {
		x.metrics.JobsFinished.WithLabelValues(string(j.Status)).Inc()
	}
	x.publishEvent(ctx, events.SubjectStatus, ev)
}

// publishEvent publishes ev on subject, counting and logging a failure: the
// redelivered ticket or the sweeper publishes it again.
func (x *Executor) publishEvent(ctx context.Context, subject string, ev events.StatusEvent) {
	data, err := json.Marshal(ev)
	if err == nil {
		err = x.pub.Publish(ctx, subject, data, ev.MsgID(), false)
	}
	if err != nil {
		if x.metrics != nil {
			x.metrics.EventPublishErrs.Inc()
		}
		x.log.ErrorContext(ctx, "publish status event", "subject", subject, "job_id", ev.JobID, "status", ev.Status, "error", err)
	}
}

// Reemit publishes job id's current status event again, under the revision of
// the state change it was first published for.
func (x *Executor) Reemit(ctx context.Context, id string) {
	j, rev, err := x.store.Get(ctx, id)
	if err != nil {
		x.log.WarnContext(ctx, "re-emit status event", "job_id", id, "error", err)
		return
	}
	x.EmitAgain(ctx, j, rev)
}

// EmitAgain publishes the status event of j, read at rev, again, on
// events.SubjectStatusAgain: JOB_EVENTS stores it as jobs.status if the first
// publish was lost, and drops it as a duplicate otherwise; no subscriber of
// jobs.status sees it twice.
func (x *Executor) EmitAgain(ctx context.Context, j *events.Job, rev uint64) {
	x.publishEvent(ctx, events.SubjectStatusAgain, j.Event(j.StateRevision(rev)))
}

// HandOn publishes the ticket j expects, if any. The dedupe id (TicketMsgID)
// makes a re-publish of the same hand-off a no-op inside the duplicates
// window.
//
// A hand-off to compile whose LaTeX is not yet described also goes to the meta
// stage, after the compile ticket so the PDF never waits for it: every place
// that re-publishes a lost hand-off (a redelivered stale ticket, the sweeper, the
// max-deliveries handler) thereby re-publishes a lost meta ticket too.
func (x *Executor) HandOn(ctx context.Context, j *events.Job) error {
	if j.Stage == "" || (j.Status != events.StatusPending && j.Status != events.StatusWaitingAIFix) {
		return nil
	}
	if err := x.sendTicket(ctx, j, j.Queue().Subject(), j.Ticket()); err != nil {
		return err
	}
	if j.Stage == events.StageCompile && j.MetaDue() {
		return x.sendTicket(ctx, j, events.SubjectMeta, j.MetaTicket())
	}
	return nil
}

func (x *Executor) sendTicket(ctx context.Context, j *events.Job, subject string, t events.Ticket) error {
	id := TicketMsgID(j, t)
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode ticket %s: %w", id, err)
	}
	if err := x.pub.Publish(ctx, subject, data, id, true); err != nil {
		return fmt.Errorf("publish ticket %s: %w", id, kvstore.Classify(err))
	}
	return nil
}

// TicketMsgID is the dedupe id of ticket t of job j: the hand-off's own id
// (job, stage, sequence) and the job's incarnation. A re-publish of the same
// hand-off (a redelivered stale ticket, the sweeper, the max-deliveries
// handler) repeats it and is dropped inside the duplicates window; a job
// created again under the id of a deleted one starts its sequence again, but
// not its incarnation, so its first ticket is not taken for the deleted job's.
// Status events need no such part: their id holds the KV revision of the
// write, which the bucket never hands out twice.
func TicketMsgID(j *events.Job, t events.Ticket) string {
	if j.Incarnation == "" { // stored before incarnations
		return t.MsgID()
	}
	return t.MsgID() + ":" + j.Incarnation
}

// JetStream is a Publisher that waits for each acknowledgement: a status event
// is tried up to five times with a growing pause (about 1.5s in all; its
// dedupe id makes a retry after a lost acknowledgement harmless), a ticket
// once.
type JetStream struct{ JS jetstream.JetStream }

// publishAttempts bounds the publishes of one status event.
const publishAttempts = 5

func (p JetStream) Publish(ctx context.Context, subject string, data []byte, msgID string, ticket bool) error {
	for attempt := 1; ; attempt++ {
		_, err := p.JS.Publish(ctx, subject, data, jetstream.WithMsgID(msgID))
		if err == nil || ticket || attempt == publishAttempts {
			return err
		}
		if !wait.Sleep(ctx, time.Duration(attempt)*100*time.Millisecond) {
			return err
		}
	}
}

// ReportRejected reports a message that cannot become a job on jobs.rejected.
func ReportRejected(ctx context.Context, js jetstream.JetStream, log *slog.Logger, subject, msgID, reason string) {
	data, err := json.Marshal(events.Rejection{Reason: reason, Subject: subject, MsgID: msgID})
	if err == nil {
		_, err = js.Publish(ctx, events.SubjectRejected, data)
	}
	log.WarnContext(ctx, "message rejected", "subject", subject, "msg_id", msgID, "reason", reason)
	if err != nil {
		log.ErrorContext(ctx, "publish rejection", "error", err)
	}
}
