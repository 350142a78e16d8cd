package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sheetpipe/sheetpipe/events"
)

// DefaultTimeout bounds a control request whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Every control method below is one request/reply on the control API's subject
// "sheetpipe.<operation>". A request the service refuses fails with an
// *events.ControlError: errors.Is(err, events.ErrInvalid) for code 400 (a job id
// that is not a UUID, a blank instruction...), events.ErrNotFound for 404 (no such
// job) and events.ErrConflict for 409 (not allowed in the job's state); its
// Message is the service's explanation. With no service on the server the error
// matches ErrNoService; when ctx ends first it wraps ctx.Err().
//
// The changes (EditLatex, Retry, Refine, Abort) take IfRevision(rev): the change
// is made only if the job is still at revision rev, the one the caller read
// (Get's Revision). Otherwise nothing changes and the error matches
// events.ErrStale (and events.ErrConflict); events.RevisionOf(err) is the job's
// current revision.

// Get returns job id as stored now, with its revision.
func (c *Client) Get(ctx context.Context, id string) (*events.Versioned, error) {
	return c.job(ctx, events.OpGet, events.JobRef{JobID: id})
}

// EditLatex replaces the job's LaTeX with latex and compiles it (status pending at
// step compile); a failed compile of it waits for the user (waiting_manual).
// Allowed unless the job is running or aborted.
func (c *Client) EditLatex(ctx context.Context, id, latex string, opts ...ChangeOption) (*events.Versioned, error) {
	return c.job(ctx, events.OpLatex, events.LatexEdit{JobID: id, Latex: latex, IfRevision: changeOf(opts).ifRevision})
}

// Retry re-runs the step that failed with a fresh retry budget. Allowed from
// error and waiting_manual.
func (c *Client) Retry(ctx context.Context, id string, opts ...ChangeOption) (*events.Versioned, error) {
	return c.job(ctx, events.OpRetry, events.JobChange{JobID: id, IfRevision: changeOf(opts).ifRevision})
}

// Refine adds instruction to the job's conversation and regenerates design,
// LaTeX and PDF. Allowed from completed, error and waiting_manual.
func (c *Client) Refine(ctx context.Context, id, instruction string, opts ...ChangeOption) (*events.Versioned, error) {
	return c.job(ctx, events.OpRefine, events.Refinement{JobID: id, Instruction: instruction, IfRevision: changeOf(opts).ifRevision})
}

// Abort ends a job that has not ended (status aborted, final); waiting_manual
// jobs may be aborted. Completed and aborted jobs, and jobs whose request was
// invalid, refuse it.
func (c *Client) Abort(ctx context.Context, id string, opts ...ChangeOption) (*events.Versioned, error) {
	return c.job(ctx, events.OpAbort, events.JobChange{JobID: id, IfRevision: changeOf(opts).ifRevision})
}

// ChangeOption qualifies a change (EditLatex, Retry, Refine, Abort).
type ChangeOption func(*change)

type change struct {
	ifRevision *uint64
}

// IfRevision makes the change only if the job is still at revision rev (see
// above); the service refuses rev 0, which no job has.
func IfRevision(rev uint64) ChangeOption {
	return func(c *change) { c.ifRevision = &rev }
}

func changeOf(opts []ChangeOption) change {
	var c change
	for _, o := range opts {
		o(&c)
	}
	return c
}

// List returns the jobs matching q, newest first, at most q.Limit of them (the
// service's default when 0); Truncated says more matched.
func (c *Client) List(ctx context.Context, q events.ListQuery) (events.ListReply, error) {
	var reply events.ListReply
	err := c.call(ctx, events.OpList, q, &reply)
	return reply, err
}

// Usage returns a user's LLM usage over the period q names (by default the 30
// days up to today, UTC): tokens, paid calls and cost, from the service's
// per-user daily counters.
func (c *Client) Usage(ctx context.Context, q events.UsageQuery) (events.UsageReply, error) {
	var reply events.UsageReply
	err := c.call(ctx, events.OpUsage, q, &reply)
	return reply, err
}

// job runs a control operation whose reply is the job.
func (c *Client) job(ctx context.Context, op string, req any) (*events.Versioned, error) {
	var j events.Versioned
	if err := c.call(ctx, op, req, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// call sends req as JSON to the operation's subject and decodes the reply into
// reply, or the service's error into an *events.ControlError.
func (c *Client) call(ctx context.Context, op string, req, reply any) error {
	subject := events.ControlSubject(op)
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", subject, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	msg, err := c.nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &noServiceError{subject: subject}
	case err != nil:
		return fmt.Errorf("%s: no reply: %w", subject, err)
	}
	if err := controlError(msg); err != nil {
		return err
	}
	if err := json.Unmarshal(msg.Data, reply); err != nil {
		return fmt.Errorf("%s: decode reply: %w", subject, err)
	}
	return nil
}

// controlError decodes a micro error reply (headers Nats-Service-Error-Code and
// Nats-Service-Error, body {"error", "revision"?}), or returns nil for a success.
func controlError(msg *nats.Msg) error {
	code := msg.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		n = events.CodeInternal
	}
	text := msg.Header.Get(micro.ErrorHeader)
	var body events.ErrorReply
	if json.Unmarshal(msg.Data, &body) == nil && body.Error != "" {
		text = body.Error
	}
	if text == "" {
		text = "the service failed with code " + code
	}
	return &events.ControlError{Code: n, Message: text, Revision: body.Revision}
}
