package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/eventcheck"
	"github.com/sheetpipe/sheetpipe/metrics"
	"github.com/sheetpipe/sheetpipe/worker"
)

// jobStore is what the sender needs of package kvstore: the job at an event's
// revision, to check the event and read the job's webhook URL.
type jobStore interface {
	JobAt(ctx context.Context, id string, rev uint64) (*events.Job, error)
}

// Config tunes a Sender.
type Config struct {
	// Secret signs every POST (SHEETPIPE_WEBHOOK_SECRET). Required.
	Secret string
	// Guard decides which addresses may be posted to. Default: NewGuard(nil), no
	// internal address.
	Guard *Guard
	// Timeout bounds one POST attempt. Default 10s.
	Timeout time.Duration
	// RetryBase is the delay after the first failed attempt; it doubles with each
	// attempt. Default 10s.
	RetryBase time.Duration
	// RetryMax caps the delay between attempts. Default 20m (with the consumer's
	// 10 attempts, about an hour from the first to the last).
	RetryMax time.Duration
	// Concurrency is how many events this process delivers at once. Default 16.
	Concurrency int
}

func (c Config) withDefaults() Config {
	if c.Guard == nil {
		c.Guard = NewGuard(nil)
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.RetryBase == 0 {
		c.RetryBase = 10 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 20 * time.Minute
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Secret == "" {
		errs = append(errs, errors.New("webhook secret is empty"))
	}
	if c.Timeout < 0 || c.RetryBase < 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("timeout %s and back-off %s..%s must be positive", c.Timeout, c.RetryBase, c.RetryMax))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d must be at least 1", c.Concurrency))
	}
	return errors.Join(errs...)
}

// backoff is the delay after attempt n (1-based) failed.
func (c Config) backoff(n int) time.Duration { return worker.Backoff(c.RetryBase, c.RetryMax, n) }

// Deps are the parts a Sender uses.
type Deps struct {
	JS      jetstream.JetStream
	Store   jobStore
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// Sender delivers webhooks from the shared consumer "webhooks", as the handler
// of a worker.Runner.
type Sender struct {
	cfg     Config
	js      jetstream.JetStream
	store   jobStore
	log     *slog.Logger
	metrics *metrics.Metrics
	client  *http.Client
	check   *eventcheck.Checker

	// maxDeliver comes from the consumer's configuration, which Provision sets
	// and every process shares.
	maxDeliver int

	runner *worker.Runner
}

// New checks cfg and builds a Sender; Start runs it.
func New(cfg Config, d Deps) (*Sender, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{cfg: cfg, js: d.JS, store: d.Store, log: log, metrics: d.Metrics,
		client: cfg.Guard.Client(cfg.Timeout), check: eventcheck.New(broker.ConsumerWebhooks, d.Store, log, d.Metrics)}, nil
}

// CheckURL vets a request's webhook_url (see Guard.CheckURL).
func (s *Sender) CheckURL(ctx context.Context, url string) error {
	return s.cfg.Guard.CheckURL(ctx, url)
}

// Start consumes the webhooks consumer until Stop.
func (s *Sender) Start(ctx context.Context) error {
	cons, err := s.js.Consumer(ctx, events.StreamEvents, broker.ConsumerWebhooks)
	if err != nil {
		return fmt.Errorf("bind consumer %s: %w", broker.ConsumerWebhooks, err)
	}
	info := cons.CachedInfo().Config
	s.maxDeliver = info.MaxDeliver
	r, err := worker.New(worker.Config{
		Name:        "webhooks",
		Stream:      events.StreamEvents,
		Durables:    []string{broker.ConsumerWebhooks},
		Handler:     s.handle,
		Concurrency: s.cfg.Concurrency,
		Heartbeat:   max(info.AckWait/3, 100*time.Millisecond),
		Backoff:     s.cfg.backoff,
		Log:         s.log,
	})
	if err != nil {
		return err
	}
	if err := r.Start(ctx, s.js); err != nil {
		return err
	}
	s.runner = r
	return nil
}

// Stop stops fetching, hands back what was fetched but not started, and waits
// for deliveries in flight until ctx ends; then it cancels them (their events
// are handed back for another process to retry).
func (s *Sender) Stop(ctx context.Context) {
	if s.runner != nil {
		s.runner.Stop(ctx)
	}
}
