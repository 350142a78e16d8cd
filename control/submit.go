package control

import (
	"context"
	"fmt"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// HandOn publishes the first ticket of a job just created, or, for one that
// waits for its dependencies, re-evaluates them once now that it is stored: a
// dependency that ended since they were read has woken nobody.
func (p *Plane) HandOn(ctx context.Context, j *events.Job) error {
	if j.Blocked {
		return p.x.Wake(ctx, j.ID)
	}
	return p.x.HandOn(ctx, j)
}

// Created counts and announces a job just stored at revision rev.
func (p *Plane) Created(ctx context.Context, j *events.Job, rev uint64) {
	p.x.Created(ctx, j, rev)
	p.log.InfoContext(ctx, "job created", "job_id", j.ID, "status", j.Status, "provider", j.Provider)
}

// validate checks req against the contract (filling its defaults) and vets its
// webhook_url, which needs a lookup and this process's webhook settings.
func (p *Plane) validate(ctx context.Context, req *events.JobRequest) error {
	if err := req.Validate(*p.cfg.MaxRetries); err != nil {
		return err
	}
	if err := req.ValidateTokenBudget(p.cfg.TokenBudget); err != nil {
		return err
	}
	if req.WebhookURL == "" {
		return nil
	}
	return p.cfg.CheckWebhook(ctx, req.WebhookURL)
}

// newJob builds the job of a request; invalid (a decoding error) or the request's
// own validation makes it a job in status error.
func (p *Plane) newJob(req events.JobRequest, invalid error) *events.Job {
	j := &events.Job{
		ID:             req.JobID,
		UserID:         req.UserID,
		Prompt:         req.Prompt,
		Mode:           req.Mode,
		ConversationID: req.JobID,
		Provider:       p.cfg.Provider,
	}
	if invalid == nil {
		invalid = req.Validate(*p.cfg.MaxRetries)
	}
	if invalid == nil {
		invalid = req.ValidateTokenBudget(p.cfg.TokenBudget)
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
	j.TokenBudget = req.TokenBudget
	lifecycle.Accept(j)
	return j
}

// Duplicate handles a request whose job exists. A redelivery (the process
// before died between creating the job and handing it on) re-publishes the job's
// current event; while the job still waits for its first hand-off, that ticket is
// re-published too (both deduplicated), and a job waiting for its dependencies
// has them re-evaluated. A client's second request changes nothing.
func (p *Plane) Duplicate(ctx context.Context, id string, redelivered bool) error {
	j, rev, err := p.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("load duplicate job %s: %w", id, err)
	}
	p.log.InfoContext(ctx, "duplicate request ignored", "job_id", id, "status", j.Status)
	if redelivered {
		p.x.EmitAgain(ctx, j, rev)
	}
	if j.Status == events.StatusPending && j.Stage == events.StageDesign && j.Seq == 1 {
		return p.x.HandOn(ctx, j)
	}
	if j.Blocked {
		return p.x.Wake(ctx, id)
	}
	return nil
}

// dependOn prepares the new, valid job j for its dependencies before it is
// created: each must exist (else an ErrInvalid naming it), j is indexed under
// each, and j waits unless they have all completed.
func (p *Plane) dependOn(ctx context.Context, j *events.Job) error {
	if len(j.DependsOn) == 0 || j.Status != events.StatusPending {
		return nil
	}
	w, missing, err := p.x.Dependencies(ctx, j.DependsOn)
	if err != nil {
		return err
	}
	if missing != "" {
		return fmt.Errorf("%w: depends_on: job %s does not exist", events.ErrInvalid, missing)
	}
	if err := p.store.AddDependent(ctx, j.ID, j.DependsOn); err != nil {
		return err
	}
	lifecycle.Submitted(j, w)
	return nil
}
