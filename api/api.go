package api

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// Control is what the API needs of the control plane; *control.Plane implements it.
type Control interface {
	Submit(ctx context.Context, req events.JobRequest) (string, error)
	Get(ctx context.Context, id string) (*events.Job, uint64, error)
	EditLatex(ctx context.Context, e events.LatexEdit) (*events.Versioned, error)
	Retry(ctx context.Context, c events.JobChange) (*events.Versioned, error)
	Refine(ctx context.Context, r events.Refinement) (*events.Versioned, error)
	Abort(ctx context.Context, c events.JobChange) (*events.Versioned, error)
	List(ctx context.Context, q events.ListQuery) (events.ListReply, error)
	// PDF returns the PDF of a job that has one; events.ErrNotFound (wrapped, with a message naming the job's state) when it has none yet or the job is unknown.
	PDF(ctx context.Context, id string) ([]byte, error)
	// Follow sends the job's current state as a status event first, then one event per state change, and closes the channel after a final state (events.StatusEvent.Final()) or when ctx ends; events.ErrNotFound for an unknown job.
	Follow(ctx context.Context, id string) (<-chan events.StatusEvent, error)
	// SubmitBatch creates a batch's jobs and returns their ids once all are stored; the same batch id sent again returns the same ids, with other jobs events.ErrConflict.
	SubmitBatch(ctx context.Context, b events.BatchRequest) (events.BatchReply, error)
	// Batch returns a batch's aggregate status; events.ErrNotFound for an unknown batch.
	Batch(ctx context.Context, id string) (events.BatchStatus, error)
	// FollowBatch sends the batch's status (every job), then one status per change of one of its jobs (listing that job), and closes the channel after the Done status or when ctx ends.
	FollowBatch(ctx context.Context, id string) (<-chan events.BatchStatus, error)
	// Queue reports the unfinished jobs against the queue limits: in total, of one user, and the users with the most.
	Queue(ctx context.Context, q events.QueueQuery) (events.QueueReply, error)
	// Usage returns a user's LLM usage over a period (docs/usage.md), read from per-user daily counters.
	Usage(ctx context.Context, q events.UsageQuery) (events.UsageReply, error)
}

// Config tunes the API. A zero or negative duration or size takes its default.
type Config struct {
	Token        string        // bearer token required on /jobs; empty: none
	Public       bool          // the HTTP listener is not loopback-only; without Token, /jobs is then refused (403 with a message telling to set SHEETPIPE_API_TOKEN)
	MaxBodyBytes int64         // default 1 MiB; larger bodies get 413
	KeepAlive    time.Duration // SSE keep-alive comment interval, default 15s
	Timeout      time.Duration // per-request deadline for non-streaming operations, default 30s
	MaxStreams   int           // server-sent event streams (job and batch events) open at once; beyond, 503 with Retry-After. Default 256
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultKeepAlive    = 15 * time.Second
	DefaultTimeout      = 30 * time.Second
	DefaultMaxStreams   = 256
)

// maxInFlight bounds the requests one micro endpoint of one process works on at
// once; a request beyond it waits for a slot within its deadline.
const maxInFlight = 64

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	return c
}

// API serves the control operations of ctl over NATS micro and HTTP.
type API struct {
	ctl Control
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	svc      *service
	stopping bool
	inFlight sync.WaitGroup
	streams  atomic.Int64 // server-sent event streams open
}

// New returns an API over ctl; nothing is served until StartMicro or Register.
// A nil log discards.
func New(ctl Control, cfg Config, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{ctl: ctl, cfg: cfg.withDefaults(), log: log}
}

// failed logs a failed request. The message is fixed; the token never reaches it.
func (a *API) failed(ctx context.Context, transport, op, jobID string, code int, err error) {
	a.log.WarnContext(ctx, "control request failed",
		"transport", transport, "op", op, "job_id", jobID, "code", code, "error", err.Error())
}
