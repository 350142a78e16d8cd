package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
)

// Client talks to sheetpipe over an existing NATS connection, which the caller
// owns and closes.
type Client struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// New returns a client using nc.
func New(nc *nats.Conn) (*Client, error) {
	if nc == nil {
		return nil, ErrNoConn
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Client{nc: nc, js: js}, nil
}

// Submit sends req to the control API (sheetpipe.submit) and returns the job id
// once the service has stored the job and handed it to the design stage. An empty
// req.JobID gets a new UUIDv4 here, so a request whose reply was lost can be sent
// again with the same id; the service normalises a given id to lower case.
//
// The service validates the request: an invalid one (a job id that is not a UUID,
// no user_id, a blank or oversized prompt, max_retries out of range, an unknown
// mode) fails at once with an *events.ControlError of code 400 and creates no
// job. Submitting a job id again with the same user and prompt creates nothing
// new and returns the id; with a different request it fails with code 409.
func (c *Client) Submit(ctx context.Context, req events.JobRequest) (string, error) {
	if req.JobID == "" {
		req.JobID = uuid.NewString()
	}
	var reply events.SubmitReply
	if err := c.call(ctx, events.OpSubmit, req, &reply); err != nil {
		return "", err
	}
	return reply.JobID, nil
}

// PDF returns the PDF of a completed job. It asks the service for the job first:
// a job that is not completed (running again after an edit, refine or retry, or
// aborted) has no PDF, whatever an earlier run left in the object store, and PDF
// fails with ErrNoPDF naming the job's state; so it does when the object is gone.
func (c *Client) PDF(ctx context.Context, id string) ([]byte, error) {
	id, err := existingID(id)
	if err != nil {
		return nil, err
	}
	job, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if job.PDFURL == "" {
		return nil, fmt.Errorf("job %s is %s at step %s: %w", id, job.Status, job.CurrentStep, ErrNoPDF)
	}
	obs, err := c.js.ObjectStore(ctx, broker.BucketPDFs)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", broker.BucketPDFs, notProvisioned(err))
	}
	pdf, err := obs.GetBytes(ctx, id+".pdf")
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("job %s: %w", id, ErrNoPDF)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s.pdf: %w", id, err)
	}
	return pdf, nil
}

// existingID checks that id is a UUID and normalises it.
func existingID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", fmt.Errorf("%w: %q", ErrInvalidJobID, id)
	}
	return u.String(), nil
}

// notProvisioned turns the errors of a server without sheetpipe's resources into
// ErrNotProvisioned.
func notProvisioned(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrStreamNotFound),
		errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: %w", ErrNotProvisioned, err)
	}
	return err
}
