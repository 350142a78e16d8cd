package consumers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/failpoint"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// handlePrompt turns a job request on jobs.prompt into a job. A message that is not
// a JSON request is terminated and reported on jobs.rejected; a request that breaks
// the contract's rules becomes a job in status error; a request for an existing
// job id creates nothing new.
func (p *Pipeline) handlePrompt(ctx context.Context, msg jetstream.Msg) error {
	msgID := msg.Headers().Get(nats.MsgIdHdr)
	req, invalid := events.DecodeRequest(msg.Data())
	err := invalid
	if !errors.Is(err, events.ErrMalformed) && req.JobID != "" {
		req.JobID, err = canonicalID(req.JobID)
	}
	if errors.Is(err, events.ErrMalformed) {
		lifecycle.ReportRejected(ctx, p.js, p.log, msg.Subject(), msgID, err.Error())
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	if req.JobID == "" {
		req.JobID = derivedJobID(msg, msgID)
	}
	j, err := p.submit.Prepare(ctx, req, invalid)
	if err != nil {
		return err
	}
	rev, err := p.submit.Create(ctx, j)
	if errors.Is(err, kvstore.ErrExists) {
		return p.submit.Duplicate(ctx, req.JobID, redelivered(msg))
	}
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.ID, err)
	}
	failpoint.Inject(events.StagePrompt, failpoint.AfterWrite)
	p.submit.Created(ctx, j, rev)
	if j.Stage != "" {
		p.recent.put(j.ID, j, rev) // the design stage may claim it here without a read
	}
	return p.submit.HandOn(ctx, j)
}

// derivedJobID gives a request without job_id a random-looking UUIDv4 that is the
// same on every redelivery of the message, so a redelivery never makes a second
// job: it hashes the Nats-Msg-Id when there is one, else the message's stream
// position and publish time.
func derivedJobID(msg jetstream.Msg, msgID string) string {
	seed := "msgid:" + msgID
	if msgID == "" {
		if md, err := msg.Metadata(); err == nil {
			seed = fmt.Sprintf("seq:%s:%d:%d", md.Stream, md.Sequence.Stream, md.Timestamp.UnixNano())
		} else {
			return uuid.NewString()
		}
	}
	sum := sha256.Sum256([]byte(seed))
	id, err := uuid.NewRandomFromReader(bytes.NewReader(sum[:]))
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// canonicalID accepts a job id only as a UUID in its 36-character form (any case)
// and returns it in lower case, the one form used as KV key and in events.
func canonicalID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", fmt.Errorf("%w: job_id %s is not a UUID like 0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10", events.ErrMalformed, events.Quoted(id))
	}
	return u.String(), nil
}
