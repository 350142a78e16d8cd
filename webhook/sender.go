package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/eventcheck"
	"github.com/sheetpipe/sheetpipe/metrics"
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
func (c Config) backoff(n int) time.Duration {
	d := c.RetryBase
	for i := 1; i < n && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}

// Deps are the parts a Sender uses.
type Deps struct {
	JS      jetstream.JetStream
	Store   jobStore
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// Sender delivers webhooks from the shared consumer "webhooks".
type Sender struct {
	cfg     Config
	js      jetstream.JetStream
	store   jobStore
	log     *slog.Logger
	metrics *metrics.Metrics
	client  *http.Client
	check   *eventcheck.Checker

	// maxDeliver and heartbeat come from the consumer's configuration, which
	// Provision sets and every process shares.
	maxDeliver int
	heartbeat  time.Duration

	sem        chan struct{}
	wg         sync.WaitGroup
	cc         jetstream.ConsumeContext
	stopping   chan struct{}
	workCtx    context.Context
	cancelWork context.CancelFunc
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
	s.heartbeat = max(info.AckWait/3, 100*time.Millisecond)
	s.sem = make(chan struct{}, s.cfg.Concurrency)
	s.stopping = make(chan struct{})
	s.workCtx, s.cancelWork = context.WithCancel(context.WithoutCancel(ctx))
	cc, err := cons.Consume(s.dispatch, jetstream.PullMaxMessages(s.cfg.Concurrency),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Warn("consume", "consumer", broker.ConsumerWebhooks, "error", err)
		}))
	if err != nil {
		s.cancelWork()
		s.stopping = nil // nothing for Stop to stop
		return fmt.Errorf("consume %s: %w", broker.ConsumerWebhooks, err)
	}
	s.cc = cc
	return nil
}

// dispatch runs in the consumer's delivery goroutine and blocks while every
// worker is busy (heartbeating the waiting event), which bounds what this
// process holds.
func (s *Sender) dispatch(msg jetstream.Msg) {
	hb := time.NewTicker(s.heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-s.stopping:
			_ = msg.Nak()
			return
		case s.sem <- struct{}{}:
			s.wg.Add(1)
			go func() {
				defer func() { <-s.sem; s.wg.Done() }()
				s.handle(s.workCtx, msg)
			}()
			return
		case <-hb.C:
			_ = msg.InProgress()
		}
	}
}

// Stop stops fetching, hands back what was fetched but not started, and waits
// for deliveries in flight until ctx ends; then it cancels them (their events
// are handed back for another process to retry).
func (s *Sender) Stop(ctx context.Context) {
	if s.stopping == nil {
		return
	}
	close(s.stopping)
	s.cc.Drain()
	select {
	case <-s.cc.Closed():
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancelWork()
		<-done
	}
	s.cancelWork()
}
