package consumers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
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
		p.reject(ctx, msg.Subject(), msgID, err.Error())
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	if req.JobID == "" {
		req.JobID = derivedJobID(msg, msgID)
	}
	if invalid == nil {
		invalid = p.validate(ctx, &req)
	}
	j := p.newJob(req, invalid)
	if err := p.dependOn(ctx, j); errors.Is(err, events.ErrInvalid) {
		j = p.newJob(req, err)
	} else if err != nil {
		return err
	}
	rev, err := p.x.Create(ctx, j)
	if errors.Is(err, kvstore.ErrExists) {
		return p.duplicateRequest(ctx, req.JobID, redelivered(msg))
	}
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.ID, err)
	}
	failpoint.Inject(events.StagePrompt, failpoint.AfterWrite)
	p.created(ctx, j, rev)
	if j.Stage != "" {
		p.recent.put(j, rev) // the design stage may claim it here without a read
	}
	return p.handOn(ctx, j)
}

// handOn publishes the first ticket of a job just created, or, for one that
// waits for its dependencies, re-evaluates them once now that it is stored: a
// dependency that ended since they were read has woken nobody.
func (p *Pipeline) handOn(ctx context.Context, j *events.Job) error {
	if j.Blocked {
		return p.wake(ctx, j.ID)
	}
	return p.publishTicket(ctx, j)
}

// created counts and announces a job just stored at revision rev.
func (p *Pipeline) created(ctx context.Context, j *events.Job, rev uint64) {
	p.x.Created(ctx, j, rev)
	p.log.InfoContext(ctx, "job created", "job_id", j.ID, "status", j.Status, "provider", j.Provider)
}

// validate checks req against the contract (filling its defaults) and vets its
// webhook_url, which needs a lookup and this process's webhook settings.
func (p *Pipeline) validate(ctx context.Context, req *events.JobRequest) error {
	if err := req.Validate(*p.cfg.MaxRetries); err != nil {
		return err
	}
	if req.WebhookURL == "" {
		return nil
	}
	return p.cfg.CheckWebhook(ctx, req.WebhookURL)
}

// newJob builds the job of a request; invalid (a decoding error) or the request's
// own validation makes it a job in status error.
func (p *Pipeline) newJob(req events.JobRequest, invalid error) *events.Job {
	j := &events.Job{
		ID:             req.JobID,
		UserID:         req.UserID,
		Prompt:         req.Prompt,
		Mode:           req.Mode,
		ConversationID: req.JobID,
		Provider:       p.llm.Provider(),
	}
	if invalid == nil {
		invalid = req.Validate(*p.cfg.MaxRetries)
	}
	if err := invalid; err != nil {
		// The job only shows what was refused: it keeps a bounded excerpt of
		// each text, however large the request (up to the stream's 1 MiB).
		j.Prompt = events.Excerpt(req.Prompt, events.MaxRejectedPromptBytes)
		j.UserID = events.Excerpt(req.UserID, 4*events.MaxUserIDLen)
		j.Mode = events.Excerpt(req.Mode, 16)
		lifecycle.Reject(j, err)
		if req.MaxRetries != nil {
			j.MaxRetries = min(max(*req.MaxRetries, 0), events.MaxRetriesCap)
		}
		return j
	}
	j.Mode = req.Mode
	j.MaxRetries = *req.MaxRetries
	j.Priority = req.Priority
	j.DependsOn = req.DependsOn
	j.WebhookURL = req.WebhookURL
	lifecycle.Accept(j)
	return j
}

// duplicateRequest handles a request whose job exists. A redelivery (the process
// before died between creating the job and handing it on) re-publishes the job's
// current event; while the job still waits for its first hand-off, that ticket is
// re-published too (both deduplicated), and a job waiting for its dependencies
// has them re-evaluated. A client's second request changes nothing.
func (p *Pipeline) duplicateRequest(ctx context.Context, id string, redelivered bool) error {
	j, rev, err := p.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("load duplicate job %s: %w", id, err)
	}
	p.log.InfoContext(ctx, "duplicate request ignored", "job_id", id, "status", j.Status)
	if redelivered {
		p.x.Emit(ctx, j, j.StateRevision(rev), j.Status)
	}
	if j.Status == events.StatusPending && j.Stage == events.StageDesign && j.Seq == 1 {
		return p.publishTicket(ctx, j)
	}
	if j.Blocked {
		return p.wake(ctx, id)
	}
	return nil
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

// reject reports a message that cannot become a job on jobs.rejected.
func (p *Pipeline) reject(ctx context.Context, subject, msgID, reason string) {
	data, err := json.Marshal(events.Rejection{Reason: reason, Subject: subject, MsgID: msgID})
	if err == nil {
		_, err = p.js.Publish(ctx, events.SubjectRejected, data)
	}
	p.log.WarnContext(ctx, "message rejected", "subject", subject, "msg_id", msgID, "reason", reason)
	if err != nil {
		p.log.ErrorContext(ctx, "publish rejection", "error", err)
	}
}
