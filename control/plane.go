package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// Config tunes the control plane.
type Config struct {
	// MaxRetries is the retry budget of a request that sets none (0 is a valid
	// budget, so nil means unset). Default 3.
	MaxRetries *int
	// CheckWebhook vets a request's webhook_url before its job is created; its
	// error (events.ErrInvalid for a 400) refuses the request. Default: every
	// webhook_url is refused, webhooks being off.
	CheckWebhook func(ctx context.Context, url string) error
	// Provider names the LLM provider that new jobs are made with ("offline"
	// when no model is configured); it is recorded on each job.
	Provider string
	// PublicURL prefixes the pdf_url of an imported job whose PDF was imported
	// ("/jobs/<id>/pdf"). Default empty.
	PublicURL string
	// MaxQueued refuses a submission that would take the unfinished jobs over
	// it (limits.go). Default DefaultMaxQueued (100000); negative: no limit.
	MaxQueued int64
	// MaxQueuedPerUser is MaxQueued for the jobs of one user_id. Default
	// DefaultMaxQueuedPerUser (10000); negative: no limit.
	MaxQueuedPerUser int64
	// RecountEvery is how often the per-user counts are recounted from the
	// active index (and repaired), and the queue metrics refreshed. Default
	// DefaultRecountEvery (1m).
	RecountEvery time.Duration
	// TokenBudget is the token budget of a job whose request sets none, and the
	// most a request may set (SHEETPIPE_JOB_TOKEN_BUDGET); 0 is none, and then a
	// request may set any. Default 0.
	TokenBudget int64
}

// errWebhooksOff refuses a webhook_url in a process configured without webhooks.
var errWebhooksOff = fmt.Errorf("%w: webhooks are disabled", events.ErrInvalid)

func (c Config) withDefaults() Config {
	if c.MaxRetries == nil {
		d := events.DefaultMaxRetries
		c.MaxRetries = &d
	}
	if c.CheckWebhook == nil {
		c.CheckWebhook = func(context.Context, string) error { return errWebhooksOff }
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c
}

func (c Config) validate() error {
	if c.RecountEvery < 0 {
		return fmt.Errorf("queue recount interval %s is negative", c.RecountEvery)
	}
	if *c.MaxRetries < 0 || *c.MaxRetries > events.MaxRetriesCap {
		return fmt.Errorf("max retries %d is outside 0..%d", *c.MaxRetries, events.MaxRetriesCap)
	}
	if c.TokenBudget < 0 {
		return fmt.Errorf("token budget %d must not be negative", c.TokenBudget)
	}
	return nil
}

// Deps are the parts the control plane is built from.
type Deps struct {
	JS      jetstream.JetStream
	Store   *kvstore.Store
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// Plane answers what users ask of jobs: submit (one job, a batch, an import),
// change (retry, refine, edit, abort) and query (get, list, PDF, follow,
// history, conversation, overview). Every change is a lifecycle transition.
// It works in any process, whichever stages that process runs.
type Plane struct {
	cfg     Config
	js      jetstream.JetStream
	store   *kvstore.Store
	x       *lifecycle.Executor
	pdfs    jetstream.ObjectStore
	log     *slog.Logger
	metrics *metrics.Metrics
	// index serves List and Overview (listindex.go).
	index jobIndex
	// queue keeps the queue limits (limits.go).
	queue queue
}

// New checks cfg and binds the object store of PDFs.
func New(ctx context.Context, cfg Config, d Deps) (*Plane, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("control config: %w", err)
	}
	pdfs, err := broker.PDFs(ctx, d.JS)
	if err != nil {
		return nil, err
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := lifecycle.NewExecutor(d.Store, lifecycle.JetStream{JS: d.JS}, log, d.Metrics)
	p := &Plane{cfg: cfg, js: d.JS, store: d.Store, x: x, pdfs: pdfs, log: log, metrics: d.Metrics}
	p.startQueue()
	return p, nil
}

// Stop ends the list index's watch of the jobs bucket and the recount of the
// queue limits.
func (p *Plane) Stop() {
	p.index.stop()
	p.stopQueue()
}

// Prepare builds the job a request makes, as Submit and the prompt stage
// create it: valid, pending at step design (or waiting for its dependencies),
// or, when invalid (its decoding error), its validation refuses it or a queue
// limit does ("queue full: ..."), in error at step prompt. A valid job is
// counted against the queue limits here; Create gives it back if it fails.
func (p *Plane) Prepare(ctx context.Context, req events.JobRequest, invalid error) (*events.Job, error) {
	if invalid == nil {
		invalid = p.validate(ctx, &req)
	}
	j := p.newJob(req, invalid)
	if j.Active() {
		if err := p.admit(ctx, map[string]int{j.UserID: 1}); events.AsQueueFull(err) != nil {
			refused := p.newJob(req, err)
			refused.WebhookURL = j.WebhookURL // vetted: the refusal is delivered like the job's end
			return refused, nil
		} else if err != nil {
			return nil, err
		}
	}
	if err := p.dependOn(ctx, j); errors.Is(err, events.ErrInvalid) {
		p.release(ctx, j.UserID, 1)
		return p.newJob(req, err), nil
	} else if err != nil {
		p.release(ctx, j.UserID, 1)
		return nil, err
	}
	return j, nil
}

// Create stores the job Prepare built (kvstore.ErrExists when its id is
// taken); Created then announces it and HandOn hands it on. A job Prepare
// counted against the queue limits and not created is given back.
func (p *Plane) Create(ctx context.Context, j *events.Job) (uint64, error) {
	rev, err := p.x.Create(ctx, j)
	if err != nil && j.Active() {
		p.release(ctx, j.UserID, 1)
	}
	return rev, err
}
