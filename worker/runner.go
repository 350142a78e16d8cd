package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Handler is the work on one message. Its error decides the settlement
// (errors.go): nil, ErrStale or ErrGaveUp ack, a storage refusal
// (events.ErrStorage) nak with delay and a pause of fetching (pause.go),
// *RetryError nak with delay, ErrPermanent term, ErrLeaseLost leaves the
// delivery unsettled, anything else nak with back-off by delivery count.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// Scope wraps the handling of one message: it returns the context the Handler
// runs with and finish, which runs after the Handler and before the message is
// settled, with the Handler's error, and returns the error that settles it (the
// pipeline stages collect there the acknowledgements of their publishes). The
// time finish takes counts towards Stuck.
type Scope func(ctx context.Context) (hctx context.Context, finish func(err error) error)

// Config sets up a Runner.
type Config struct {
	// Name names the runner in what Consuming and Stuck report, e.g. "stage
	// compile". Required.
	Name string
	// Stream is the stream of the consumers. Required.
	Stream string
	// Durables are the durable pull consumers to consume, highest priority first:
	// a worker that frees takes the waiting message of the highest priority.
	// Required, at least one.
	Durables []string
	// Handler handles each message. Required.
	Handler Handler
	// Concurrency is how many messages this process works on at once. Required, at
	// least 1.
	Concurrency int
	// Heartbeat is how often a message waiting for a worker or in work is marked in
	// progress; the runner lowers it to a third of a consumer's AckWait. Default: a
	// third of the lowest AckWait of the consumers.
	Heartbeat time.Duration
	// Backoff is the delay of the nak of a message whose handler failed with an
	// error of no other kind, by its delivery count (1-based). Default Backoff(1s,
	// 1m, n).
	Backoff func(delivered int) time.Duration
	// Log receives the runner's lines; give it the attributes that name what it
	// runs (a stage's "step"). Default: discarded.
	Log *slog.Logger
	// InFlight counts the messages in work. Default: not counted.
	InFlight prometheus.Gauge
	// Done records each settled message's outcome (ok, stale, failed, retry,
	// rejected, storage, abandoned, shutdown, error, or the name given by
	// WithOutcome) and how long it took. Default: not recorded.
	Done func(outcome string, d time.Duration)
	// Scope wraps each message's handling. Default: none.
	Scope Scope
	// StuckAfter is how long a Scope's finish may run before Stuck reports its
	// worker stuck. Default: never.
	StuckAfter time.Duration
	// Storage is nil while the server's storage takes writes, else why not; a
	// runner paused by a storage refusal fetches again only once it is nil.
	// Default: fetching resumes when the pause is over.
	Storage func() error

	// Key names the user of a message (its fairness key); nil: every message has
	// key "". Used with Window.
	Key func(jetstream.Msg) string
	// Fair serves the keys of one priority round-robin (fair.go); without it the
	// oldest waiting message goes first. Used with Window.
	Fair bool
	// Window is how many messages of each consumer this process holds at once,
	// waiting for a worker (heartbeated) or in work; at least Concurrency. 0:
	// each consumer holds one waiting message at a time (arrival order, no
	// keys). Default 0.
	Window int
	// KeyLimit caps the messages of one key in work at once in this process and,
	// with Limiter, across every process sharing the Limiter. 0: no cap. Needs
	// Window.
	KeyLimit int
	// Limiter holds the cluster's places of each key (KVLimiter). Default: the
	// cap, if any, is this process's only.
	Limiter Limiter
	// Hold is nil while the outside service the work needs is available, else
	// why not; while it is not, the runner fetches nothing (hold.go). Default:
	// never held.
	Hold func() error
}

func (c Config) withDefaults() Config {
	if c.Backoff == nil {
		c.Backoff = func(n int) time.Duration { return Backoff(time.Second, time.Minute, n) }
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Name == "" || c.Stream == "" || len(c.Durables) == 0 {
		errs = append(errs, fmt.Errorf("name %q, stream %q and durables %q must be set", c.Name, c.Stream, c.Durables))
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("handler must be set"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d must be at least 1", c.Concurrency))
	}
	if c.Window < 0 || c.KeyLimit < 0 || (c.KeyLimit > 0 && c.Window == 0) {
		errs = append(errs, fmt.Errorf("window %d and key limit %d must not be negative, and a key limit needs a window", c.Window, c.KeyLimit))
	}
	if c.Heartbeat < 0 || c.StuckAfter < 0 {
		errs = append(errs, fmt.Errorf("heartbeat %s and stuck-after %s must not be negative", c.Heartbeat, c.StuckAfter))
	}
	return errors.Join(errs...)
}

// defaultHeartbeat is the heartbeat when neither Config.Heartbeat nor a
// consumer's AckWait sets one: a third of the server's default AckWait.
const defaultHeartbeat = 10 * time.Second

// Runner consumes one or more consumers into one pool of workers: a worker that
// frees takes the waiting message of the highest priority.
type Runner struct {
	cfg       Config
	heartbeat time.Duration

	slots      *slots
	bindings   []*binding // one per consumer, in order of priority
	wg         sync.WaitGroup
	mu         sync.Mutex // guards the bindings' consumptions and the pause
	pause      pause
	stopping   chan struct{}
	workCtx    context.Context
	cancelWork context.CancelFunc

	settleMu sync.Mutex
	settling map[*struct{}]time.Time // workers in their Scope's finish, since when
}

// binding is the runner's consumption of one consumer.
type binding struct {
	durable   string
	level     int                      // index in the slots' levels: 0 is the highest
	cc        jetstream.ConsumeContext // nil while the consumer is gone
	downSince time.Time
	paused    bool          // its consumption was stopped by a pause
	held      chan struct{} // with Config.Window: one token per message held
}

// expectFor is how long a free slot is kept for a queue whose last ticket said
// more are waiting on the server, before a lower ticket may take it.
const expectFor = time.Second

// New checks cfg and builds a Runner; Start runs it.
func New(cfg Config) (*Runner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	return &Runner{cfg: cfg, heartbeat: cfg.Heartbeat}, nil
}

// Start binds the consumers and consumes them until Stop.
func (r *Runner) Start(ctx context.Context, js jetstream.JetStream) error {
	cons := make([]jetstream.Consumer, len(r.cfg.Durables))
	for i, durable := range r.cfg.Durables {
		c, err := js.Consumer(ctx, r.cfg.Stream, durable)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", durable, err)
		}
		// A shared consumer's AckWait is whatever the last process to provision it
		// set; heartbeat for that one, not only for this process's setting.
		if aw := c.CachedInfo().Config.AckWait; aw > 0 && (r.heartbeat == 0 || aw/3 < r.heartbeat) {
			r.heartbeat = aw / 3
		}
		cons[i] = c
		r.bindings = append(r.bindings, &binding{durable: durable, level: i})
	}
	if r.heartbeat == 0 {
		r.heartbeat = defaultHeartbeat
	}
	r.slots = newFairSlots(r.cfg.Concurrency, len(r.bindings), r.cfg.Fair, r.cfg.KeyLimit)
	if r.cfg.Window > 0 {
		for _, b := range r.bindings {
			b.held = make(chan struct{}, max(r.cfg.Window, r.cfg.Concurrency))
		}
	}
	r.stopping = make(chan struct{})
	r.workCtx, r.cancelWork = context.WithCancel(context.WithoutCancel(ctx))
	for i, b := range r.bindings {
		r.expectBacklog(b, cons[i])
		cc, err := r.consume(b, cons[i])
		if err != nil {
			r.Stop(ctx)
			return fmt.Errorf("consume %s: %w", b.durable, err)
		}
		r.setConsumption(b, cc)
		go r.keepConsuming(js, b, cc)
	}
	if r.cfg.Hold != nil {
		go r.watchHold()
	}
	return nil
}

// consume starts delivering b's queue to dispatch, pulling up to the runner's
// concurrency at once, except for the lowest of several queues, which pulls one
// ticket at a time: a low ticket may wait for as long as normal ones keep the
// workers busy, and the one it holds waits in dispatch, heartbeated, where a
// prefetched one would sit unheartbeated and be redelivered after AckWait until
// it hit MaxDeliver. Normal tickets wait only while high ones, which are meant to
// be few, keep every worker busy; pulling them one at a time cost a round trip
// per ticket and tripled the hand-off latency (BENCHMARKS.md).
func (r *Runner) consume(b *binding, cons jetstream.Consumer) (jetstream.ConsumeContext, error) {
	pull := r.cfg.Concurrency
	if b.held == nil && len(r.bindings) > 1 && b.level == len(r.bindings)-1 {
		pull = 1
	}
	return cons.Consume(func(msg jetstream.Msg) { r.dispatch(b, msg) },
		jetstream.PullMaxMessages(pull),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.cfg.Log.Warn("consume", "consumer", b.durable, "error", err)
		}))
}

// dispatch runs in the queue's delivery goroutine; it blocks while all workers
// are busy, which bounds what this process holds.
func (r *Runner) dispatch(b *binding, msg jetstream.Msg) {
	if d := r.pausedFor(); d > 0 {
		_ = msg.NakWithDelay(d) // fetched before the pause
		return
	}
	if r.isHeld() {
		_ = msg.NakWithDelay(holdNakDelay) // fetched before the hold
		return
	}
	if b.held != nil {
		r.hold(b, msg)
		return
	}
	if !r.acquire(b.level, msg) {
		_ = msg.Nak()
		return
	}
	select {
	case <-r.stopping:
		r.slots.release()
		_ = msg.Nak()
		return
	default:
	}
	r.wg.Add(1)
	go func() {
		defer func() { r.slots.release(); r.wg.Done() }()
		r.run(msg, nil)
	}()
}

// acquire takes a worker slot for msg at its queue's level, heartbeating msg
// while it waits so it is not redelivered elsewhere meanwhile; false when the
// runner stops first.
func (r *Runner) acquire(level int, msg jetstream.Msg) bool {
	return r.await(r.slots.enter(level, nextExpected(msg)), msg)
}

// await waits for w's slot (none: it has one), heartbeating msg; false when the
// runner stops first.
func (r *Runner) await(w *slotWaiter, msg jetstream.Msg) bool {
	if w == nil {
		return true
	}
	hb := time.NewTicker(r.heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-r.stopping:
			r.slots.leave(w)
			return false
		case <-w.ready:
			return true
		case <-hb.C:
			_ = msg.InProgress()
		}
	}
}

// expectBacklog keeps the first free slots for b's queue for a moment when its
// consumer has tickets waiting: they are on their way, and a lower queue's
// ticket delivered first must not take their place.
func (r *Runner) expectBacklog(b *binding, cons jetstream.Consumer) {
	if cons.CachedInfo().NumPending > 0 {
		r.slots.expectMore(b.level, time.Now().Add(expectFor))
	}
}

// nextExpected is until when the next ticket of msg's queue is expected once msg
// has a worker: for expectFor when the server said more wait behind msg (the
// queue pulls the next as soon as msg is dispatched), else never.
func nextExpected(msg jetstream.Msg) time.Time {
	if md, err := msg.Metadata(); err == nil && md.NumPending > 0 {
		return time.Now().Add(expectFor)
	}
	return time.Time{}
}

func (r *Runner) run(msg jetstream.Msg, lease Lease) {
	start := time.Now()
	if g := r.cfg.InFlight; g != nil {
		g.Inc()
		defer g.Dec()
	}

	hbCtx, stopHB := context.WithCancel(r.workCtx)
	go r.heartbeatLoop(hbCtx, msg, lease)
	ctx, finish := context.Context(r.workCtx), func(err error) error { return err }
	if r.cfg.Scope != nil {
		ctx, finish = r.cfg.Scope(r.workCtx)
	}
	err := r.cfg.Handler(ctx, msg)
	settled := r.settleStarted()
	err = finish(err)
	settled()
	stopHB()

	outcome := r.settle(msg, err)
	if lease != nil {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(r.workCtx), leaseCallTimeout)
		if err := lease.Release(lctx); err != nil {
			r.cfg.Log.Warn("release user place", "error", err)
		}
		cancel()
	}
	if r.cfg.Done != nil {
		r.cfg.Done(outcome, time.Since(start))
	}
}

func (r *Runner) heartbeatLoop(ctx context.Context, msg jetstream.Msg, lease Lease) {
	t := time.NewTicker(r.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := msg.InProgress(); err != nil {
				r.cfg.Log.Warn("heartbeat", "error", err)
			}
			if lease != nil {
				if err := lease.Renew(ctx); err != nil && ctx.Err() == nil {
					r.cfg.Log.Warn("renew user place", "error", err)
				}
			}
		}
	}
}

// Stop stops fetching, naks what was fetched but not started (so another process
// gets it at once), and waits for in-flight work until ctx ends; then it cancels
// that work, which hands its messages back, and waits for the hand-back. A Stop
// after the first does nothing.
func (r *Runner) Stop(ctx context.Context) {
	if r.stopping == nil {
		return
	}
	r.mu.Lock()
	select {
	case <-r.stopping:
		r.mu.Unlock()
		return
	default:
	}
	close(r.stopping)
	var ccs []jetstream.ConsumeContext
	for _, b := range r.bindings {
		if b.cc != nil {
			ccs = append(ccs, b.cc)
		}
	}
	r.mu.Unlock()
	for _, cc := range ccs {
		cc.Drain() // buffered messages reach dispatch, which naks them
	}
	for _, cc := range ccs {
		select {
		case <-cc.Closed():
		case <-ctx.Done():
		}
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.cfg.Log.Warn("shutdown deadline: cancelling in-flight work")
		r.cancelWork()
		<-done
	}
	r.cancelWork()
}
