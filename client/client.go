package client

import (
	"context"
	"encoding/json"
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
	return &Client{js: js}, nil
}

// Submit publishes req on jobs.prompt and returns its job id once the JOBS stream
// has stored it. An empty req.JobID gets a new UUIDv4; a given one must be a UUID
// and is normalised to lower case, as the service does. The request's other fields
// are the service's to validate: an invalid request becomes a job in status error
// at step prompt, which Watch reports.
func (c *Client) Submit(ctx context.Context, req events.JobRequest) (string, error) {
	id, err := jobID(req.JobID)
	if err != nil {
		return "", err
	}
	req.JobID = id
	data, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("encode request %s: %w", id, err)
	}
	_, err = c.js.Publish(ctx, events.SubjectPrompt, data,
		jetstream.WithMsgID(id), jetstream.WithExpectStream(events.StreamJobs))
	if err != nil {
		return "", fmt.Errorf("publish request %s: %w", id, notProvisioned(err))
	}
	return id, nil
}

// PDF returns the PDF of a completed job. It fails with ErrNoPDF when the object
// store holds none for the job.
func (c *Client) PDF(ctx context.Context, id string) ([]byte, error) {
	id, err := existingID(id)
	if err != nil {
		return nil, err
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

// jobID returns id normalised, or a new UUIDv4 when id is empty.
func jobID(id string) (string, error) {
	if id == "" {
		return uuid.NewString(), nil
	}
	return existingID(id)
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
