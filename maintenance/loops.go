package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// bindTimeout bounds each request that binds a loop to its stream or consumer:
// a server that does not answer fails the start rather than hanging it.
const bindTimeout = 30 * time.Second

// jobs is what the loops change jobs through (lifecycle.Executor).
type jobs interface {
	Apply(ctx context.Context, id string, t lifecycle.Transition, opts ...lifecycle.Option) (*events.Job, uint64, error)
	HandOn(ctx context.Context, j *events.Job) error
	Wake(ctx context.Context, id string) error
	Expire(ctx context.Context, id string, status events.Status, step events.Step, rev uint64) error
}

// SweeperConfig tunes the sweeper.
type SweeperConfig struct {
	// Interval is how often the sweeper scans the active jobs for jobs stuck
	// running after their worker died or waiting for a lost ticket, and
	// re-checks the dependencies of jobs waiting for them. Default 10s.
	Interval time.Duration
	// Grace is how long past its lease expiry a running job is left to its
	// redelivered ticket before the sweeper recovers it; keep it above the
	// stages' AckWait. Default 2 × AckWait.
	Grace time.Duration
	// AckWait is the stages' consumers' AckWait, the default Grace's base.
	// Default 30s.
	AckWait time.Duration
	// RetryMax is the stages' longest retry back-off: a job in error is left
	// that much longer. Default 1m.
	RetryMax time.Duration
}

func (c SweeperConfig) withDefaults() SweeperConfig {
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Grace == 0 {
		c.Grace = 2 * c.AckWait
	}
	if c.RetryMax == 0 {
		c.RetryMax = time.Minute
	}
	return c
}

// DefaultRetention is how long finished jobs are kept when
// JanitorConfig.Retention is unset.
const DefaultRetention = 30 * 24 * time.Hour

// JanitorConfig tunes the janitor.
type JanitorConfig struct {
	// Retention is how long a finished job (completed, aborted, waiting_manual, or
	// in error at step prompt) is kept after its last change before the janitor
	// deletes it with its conversation and PDF; 0 keeps everything and runs no
	// janitor (nil means unset). Default 30 days.
	Retention *time.Duration
	// Interval is the mean time between two janitor passes; each wait is
	// jittered by ±50% so that processes started together spread their scans.
	// Default min(1h, Retention/10), at least 1s.
	Interval time.Duration
}

func (c JanitorConfig) withDefaults() JanitorConfig {
	if c.Retention == nil {
		d := DefaultRetention
		c.Retention = &d
	}
	if c.Interval == 0 && *c.Retention > 0 {
		c.Interval = max(time.Second, min(time.Hour, *c.Retention/10))
	}
	return c
}

// Config tunes the background loops.
type Config struct {
	Sweeper SweeperConfig
	Janitor JanitorConfig
}

func (c Config) validate() error {
	var errs []error
	if c.Sweeper.Interval < 0 || c.Sweeper.Grace < 0 {
		errs = append(errs, fmt.Errorf("sweep interval %s and grace %s must be positive", c.Sweeper.Interval, c.Sweeper.Grace))
	}
	if *c.Janitor.Retention < 0 || c.Janitor.Interval < 0 {
		errs = append(errs, fmt.Errorf("retention %s and janitor interval %s must not be negative", *c.Janitor.Retention, c.Janitor.Interval))
	}
	return errors.Join(errs...)
}

// Deps are the parts the loops are built from.
type Deps struct {
	JS      jetstream.JetStream
	Store   *kvstore.Store
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// parts returns an executor writing through d and d's logger (a discarding
// one when nil).
func (d Deps) parts() (*lifecycle.Executor, *slog.Logger) {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return lifecycle.NewExecutor(d.Store, lifecycle.JetStream{JS: d.JS}, log, d.Metrics), log
}

// Loops are the background loops every process runs beside its stages: the
// sweeper, the janitor (unless the retention is 0), the max-deliveries handler
// and the dependents consumer. Each changes jobs only through the lifecycle.
type Loops struct {
	mu         sync.Mutex
	sweeper    *sweeper
	janitor    *janitor
	deadLetter *deadLetter
	dependents *dependents
}

// Start starts the loops; they run until Stop.
func Start(ctx context.Context, cfg Config, d Deps) (*Loops, error) {
	cfg.Sweeper = cfg.Sweeper.withDefaults()
	cfg.Janitor = cfg.Janitor.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("maintenance config: %w", err)
	}
	x, log := d.parts()
	l := &Loops{}
	l.deadLetter = &deadLetter{js: d.JS, jobs: x, log: log, metrics: d.Metrics}
	if err := l.deadLetter.start(ctx); err != nil {
		return nil, fmt.Errorf("start max-deliveries handler: %w", err)
	}
	l.dependents = &dependents{js: d.JS, store: d.Store, jobs: x, log: log}
	if err := l.dependents.start(ctx); err != nil {
		l.deadLetter.stop(ctx)
		return nil, fmt.Errorf("start dependents: %w", err)
	}
	l.sweeper = &sweeper{cfg: cfg.Sweeper, store: d.Store, jobs: x, js: d.JS, log: log, metrics: d.Metrics}
	l.sweeper.start(ctx)
	if *cfg.Janitor.Retention > 0 {
		jn, err := newJanitor(ctx, cfg.Janitor, d, x, log)
		if err != nil {
			l.Stop(ctx)
			return nil, err
		}
		l.janitor = jn
		jn.start(ctx)
	}
	return l, nil
}

// newJanitor builds the janitor (without starting it).
func newJanitor(ctx context.Context, cfg JanitorConfig, d Deps, x jobs, log *slog.Logger) (*janitor, error) {
	pdfs, err := broker.PDFs(ctx, d.JS)
	if err != nil {
		return nil, err
	}
	return &janitor{cfg: cfg, store: d.Store, jobs: x, pdfs: pdfs, log: log, metrics: d.Metrics}, nil
}

// Stop stops every loop: a recovery or deletion in progress finishes until
// ctx ends. Stop them after the stages, whose last naks can exhaust a ticket's
// deliveries: the max-deliveries handler (and the sweeper) keep working until
// then.
func (l *Loops) Stop(ctx context.Context) {
	l.mu.Lock()
	sw, jn, dl, deps := l.sweeper, l.janitor, l.deadLetter, l.dependents
	l.sweeper, l.janitor, l.deadLetter, l.dependents = nil, nil, nil, nil
	l.mu.Unlock()
	var wg sync.WaitGroup
	if sw != nil {
		wg.Go(func() { sw.stop(ctx) })
	}
	if jn != nil {
		wg.Go(func() { jn.stop(ctx) })
	}
	if dl != nil {
		wg.Go(func() { dl.stop(ctx) })
	}
	if deps != nil {
		wg.Go(func() { deps.stop(ctx) })
	}
	wg.Wait()
}

// Janitor is a janitor run by hand: Pass runs one pass now, whatever the
// interval (the loops' own janitor keeps running), and Expire deletes one job
// as a pass would. Operators' tools and the tests use it.
type Janitor struct{ jn *janitor }

// NewJanitor builds a Janitor with cfg's retention.
func NewJanitor(ctx context.Context, cfg JanitorConfig, d Deps) (*Janitor, error) {
	cfg = cfg.withDefaults()
	x, log := d.parts()
	jn, err := newJanitor(ctx, cfg, d, x, log)
	if err != nil {
		return nil, err
	}
	return &Janitor{jn}, nil
}

// Pass runs one pass and returns how many jobs, orphan conversations and
// orphan PDFs it deleted.
func (j *Janitor) Pass(ctx context.Context) (jobs, conversations, pdfs int, err error) {
	done, err := j.jn.pass(ctx, ctx)
	return done.jobs, done.conversations, done.pdfs, err
}

// Expire deletes job as a pass's scan read it at rev, with its conversation
// and PDF, if it is finished and still at rev (the purge is guarded by rev, so
// a job changed since is kept); it reports whether it deleted the job.
func (j *Janitor) Expire(ctx context.Context, job *events.Job, rev uint64) (bool, error) {
	return j.jn.expire(ctx, expiredJob{id: job.ID, conversation: job.ConversationID, rev: rev,
		status: job.Status, step: job.CurrentStep, updated: job.LastChange()})
}

// Sweeper is a sweeper's scan run by hand: Reads lists the jobs a pass reads.
type Sweeper struct{ s *sweeper }

// NewSweeper builds a Sweeper with cfg.
func NewSweeper(cfg SweeperConfig, d Deps) *Sweeper {
	x, log := d.parts()
	return &Sweeper{&sweeper{cfg: cfg.withDefaults(), store: d.Store, jobs: x, js: d.JS, log: log, metrics: d.Metrics, indexed: true}}
}

// Reads runs the scan of a pass over the active index (the scan of every pass
// after a process's first) and returns the ids of the jobs it read.
func (s *Sweeper) Reads(ctx context.Context) ([]string, error) {
	var read []string
	err := s.s.scanIndex(ctx, time.Now(), func(id string, _ *events.Job, _ uint64, _ error) error {
		read = append(read, id)
		return nil
	})
	return read, err
}
