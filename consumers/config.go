package consumers

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/worker"
)

// DefaultRetention is how long finished jobs are kept when Config.Retention is unset.
const DefaultRetention = 30 * 24 * time.Hour

// Config tunes the pipeline.
type Config struct {
	// Concurrency is how many messages of each stage this process works on at once.
	// Default: prompt 32, design 16, latex 16, fix 8, meta 4, compile = number of
	// CPUs.
	Concurrency map[events.Stage]int
	// MaxRetries is the retry budget of a request that sets none (0 is a valid
	// budget, so nil means unset). Default 3.
	MaxRetries *int
	// RetryBase is the first back-off after a transient failure; it doubles with
	// each retry. Default 1s.
	RetryBase time.Duration
	// RetryMax caps the back-off. Default 1m.
	RetryMax time.Duration
	// AckWait must equal the consumers' AckWait; heartbeats go every third of it.
	// Default 30s.
	AckWait time.Duration
	// LeaseTTL is how long a running job's lease lasts without renewal; it is renewed
	// every third of it. Default 30s.
	LeaseTTL time.Duration
	// NoCompileCache compiles every source even when the same LaTeX compiled
	// before (see pdfCache). Default false: identical LaTeX is compiled once.
	NoCompileCache bool
	// PublicURL prefixes pdf_url ("/jobs/<id>/pdf"). Default empty.
	PublicURL string
	// SweepInterval is how often the sweeper scans the jobs bucket for jobs stuck
	// running after their worker died, and re-checks the dependencies of jobs
	// waiting for them. Default 10s.
	SweepInterval time.Duration
	// SweepGrace is how long past its lease expiry a running job is left to its
	// redelivered ticket before the sweeper recovers it; keep it above AckWait.
	// Default 2 × AckWait.
	SweepGrace time.Duration
	// Retention is how long a finished job (completed, aborted, waiting_manual, or
	// in error at step prompt) is kept after its last change before the janitor
	// deletes it with its conversation and PDF; 0 keeps everything (nil means
	// unset). Default 30 days.
	Retention *time.Duration
	// JanitorInterval is the mean time between two janitor passes; each wait is
	// jittered by ±50% so that processes started together spread their scans.
	// Default min(1h, Retention/10), at least 1s.
	JanitorInterval time.Duration
	// CheckWebhook vets a request's webhook_url before its job is created; its
	// error (events.ErrInvalid for a 400) refuses the request. Default: every
	// webhook_url is refused, webhooks being off.
	CheckWebhook func(ctx context.Context, url string) error
	// MetaAttempts is how many deliveries of one meta ticket may try to describe a
	// job before the meta stage gives up on it (the job keeps no description).
	// Default 4.
	MetaAttempts int
}

// errWebhooksOff refuses a webhook_url in a pipeline configured without webhooks.
var errWebhooksOff = fmt.Errorf("%w: webhooks are disabled", events.ErrInvalid)

func (c Config) withDefaults() Config {
	def := map[events.Stage]int{
		events.StagePrompt: 32, events.StageDesign: 16, events.StageLatex: 16,
		events.StageFix: 8, events.StageCompile: runtime.NumCPU(), events.StageMeta: 4,
	}
	merged := make(map[events.Stage]int, len(def))
	for st, n := range def {
		merged[st] = n
		if v, ok := c.Concurrency[st]; ok && v != 0 {
			merged[st] = v
		}
	}
	c.Concurrency = merged
	if c.MaxRetries == nil {
		d := events.DefaultMaxRetries
		c.MaxRetries = &d
	}
	if c.RetryBase == 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = time.Minute
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.MetaAttempts == 0 {
		c.MetaAttempts = 4
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = 10 * time.Second
	}
	if c.SweepGrace == 0 {
		c.SweepGrace = 2 * c.AckWait
	}
	if c.Retention == nil {
		d := DefaultRetention
		c.Retention = &d
	}
	if c.JanitorInterval == 0 && *c.Retention > 0 {
		c.JanitorInterval = max(time.Second, min(time.Hour, *c.Retention/10))
	}
	if c.CheckWebhook == nil {
		c.CheckWebhook = func(context.Context, string) error { return errWebhooksOff }
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c
}

func (c Config) validate() error {
	var errs []error
	for st, n := range c.Concurrency {
		if !st.Runnable() {
			errs = append(errs, fmt.Errorf("concurrency: unknown stage %q", st))
		} else if n < 1 {
			errs = append(errs, fmt.Errorf("concurrency of %s is %d, must be at least 1", st, n))
		}
	}
	if *c.MaxRetries < 0 || *c.MaxRetries > events.MaxRetriesCap {
		errs = append(errs, fmt.Errorf("max retries %d is outside 0..%d", *c.MaxRetries, events.MaxRetriesCap))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("retry back-off %s..%s is not a positive range", c.RetryBase, c.RetryMax))
	}
	if c.AckWait < time.Second || c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("ack wait %s and lease %s must be at least 1s", c.AckWait, c.LeaseTTL))
	}
	if c.MetaAttempts < 1 {
		errs = append(errs, fmt.Errorf("meta attempts %d must be at least 1", c.MetaAttempts))
	}
	if c.SweepInterval < 0 || c.SweepGrace < 0 {
		errs = append(errs, fmt.Errorf("sweep interval %s and grace %s must be positive", c.SweepInterval, c.SweepGrace))
	}
	if *c.Retention < 0 || c.JanitorInterval < 0 {
		errs = append(errs, fmt.Errorf("retention %s and janitor interval %s must not be negative", *c.Retention, c.JanitorInterval))
	}
	return errors.Join(errs...)
}

// backoff is the delay before retry number n (1-based).
func (c Config) backoff(n int) time.Duration { return worker.Backoff(c.RetryBase, c.RetryMax, n) }
