// Package eventcheck checks status events from jobs.status against the jobs
// bucket before anyone acts on them. Whoever can publish on jobs.status can
// publish any event, so an event is taken as a claim: "job J was in status S at
// step P at revision R". It is verified when the jobs bucket holds a value of J
// written at R (kvstore.Store.JobAt: the current value, or the key's history)
// in status S at step P; what is then acted on or forwarded is the event built
// from that value, never the published bytes. Any other event is dropped,
// counted in sheetpipe_events_dropped_total{consumer,reason} and logged.
package eventcheck

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// Reasons for dropping an event (metrics.EventDropReasons).
const (
	Malformed  = "malformed"
	UnknownJob = "unknown_job"
	Mismatch   = "mismatch"
	Superseded = "superseded"
)

// jobReader is what a Checker needs of kvstore.Store.
type jobReader interface {
	JobAt(ctx context.Context, id string, rev uint64) (*events.Job, error)
}

// Checker verifies the status events one consumer reads.
type Checker struct {
	consumer string
	store    jobReader
	log      *slog.Logger
	metrics  *metrics.Metrics
}

// New returns a Checker for consumer (a metrics.EventConsumers label). A nil
// log discards; nil metrics count nothing.
func New(consumer string, store jobReader, log *slog.Logger, m *metrics.Metrics) *Checker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{consumer: consumer, store: store, log: log, metrics: m}
}

// Decode parses a published status event. One that is not a status event
// (not JSON, no job id that is a UUID, no revision) is dropped: false.
func (c *Checker) Decode(ctx context.Context, data []byte) (events.StatusEvent, bool) {
	var ev events.StatusEvent
	err := json.Unmarshal(data, &ev)
	if err == nil {
		ev.JobID, err = events.JobIDOf(ev.JobID)
	}
	if err == nil && ev.Revision == 0 {
		err = errors.New("revision is 0")
	}
	if err != nil {
		c.Drop(ctx, ev.JobID, Malformed, err)
		return events.StatusEvent{}, false
	}
	return ev, true
}

// Verify checks ev against the jobs bucket. It returns the event built from the
// job's value at ev's revision, with that value, and true; false when ev is
// dropped (counted and logged). An error is a failed read: nothing is known
// about ev, and the caller decides whether to try again.
func (c *Checker) Verify(ctx context.Context, ev events.StatusEvent) (events.StatusEvent, *events.Job, bool, error) {
	j, err := c.store.JobAt(ctx, ev.JobID, ev.Revision)
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		c.Drop(ctx, ev.JobID, UnknownJob, err)
		return events.StatusEvent{}, nil, false, nil
	case errors.Is(err, kvstore.ErrNotAtRevision):
		c.Drop(ctx, ev.JobID, Mismatch, err)
		return events.StatusEvent{}, nil, false, nil
	case errors.Is(err, kvstore.ErrPastHistory):
		c.Drop(ctx, ev.JobID, Superseded, err)
		return events.StatusEvent{}, nil, false, nil
	case err != nil:
		return events.StatusEvent{}, nil, false, err
	}
	if j.Status != ev.Status || j.CurrentStep != ev.Step {
		c.Drop(ctx, ev.JobID, Mismatch, &mismatchError{ev: ev, job: j})
		return events.StatusEvent{}, nil, false, nil
	}
	return j.Event(ev.Revision), j, true, nil
}

// Drop counts and logs an event dropped for reason.
func (c *Checker) Drop(ctx context.Context, jobID, reason string, err error) {
	c.metrics.EventDropped(c.consumer, reason)
	c.log.WarnContext(ctx, "status event dropped", "consumer", c.consumer, "job_id", jobID, "reason", reason, "error", err.Error())
}

type mismatchError struct {
	ev  events.StatusEvent
	job *events.Job
}

func (e *mismatchError) Error() string {
	return "event says " + string(e.ev.Status) + "/" + string(e.ev.Step) + ", the job was " +
		string(e.job.Status) + "/" + string(e.job.CurrentStep) + " at that revision"
}
