package consumers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/failpoint"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// handlerFunc is one stage's work on one message. Its error decides the
// settlement: nil, ErrStale or errGaveUp ack, *RetryError nak with delay,
// ErrPermanent term, anything else nak with back-off by delivery count.
type handlerFunc func(ctx context.Context, msg jetstream.Msg) error

// runner consumes one stage's durable consumer with bounded concurrency.
type runner struct {
	stage       events.Stage
	handle      handlerFunc
	concurrency int
	heartbeat   time.Duration
	backoff     func(int) time.Duration
	log         *slog.Logger
	metrics     *metrics.Metrics

	sem        chan struct{}
	wg         sync.WaitGroup
	mu         sync.Mutex
	cc         jetstream.ConsumeContext // nil while the consumer is gone
	downSince  time.Time
	stopping   chan struct{}
	workCtx    context.Context
	cancelWork context.CancelFunc
}

func (r *runner) start(ctx context.Context, js jetstream.JetStream) error {
	cons, err := js.Consumer(ctx, events.StreamJobs, string(r.stage))
	if err != nil {
		return err
	}
	// The shared consumer's AckWait is whatever the last process to provision it
	// set; heartbeat for that one, not only for this process's setting.
	if aw := cons.CachedInfo().Config.AckWait; aw > 0 && aw/3 < r.heartbeat {
		r.heartbeat = aw / 3
	}
	r.sem = make(chan struct{}, r.concurrency)
	r.stopping = make(chan struct{})
	r.workCtx, r.cancelWork = context.WithCancel(context.WithoutCancel(ctx))
	cc, err := r.consume(cons)
	if err != nil {
		return err
	}
	r.setConsumption(cc)
	go r.keepConsuming(js, cc)
	return nil
}

func (r *runner) consume(cons jetstream.Consumer) (jetstream.ConsumeContext, error) {
	return cons.Consume(r.dispatch,
		jetstream.PullMaxMessages(r.concurrency),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.log.Warn("consume", "step", r.stage, "error", err)
		}))
}

// dispatch runs in the consumer's delivery goroutine; it blocks while all workers
// are busy, which bounds what this process holds.
func (r *runner) dispatch(msg jetstream.Msg) {
	if !r.acquire(msg) {
		_ = msg.Nak()
		return
	}
	select {
	case <-r.stopping:
		<-r.sem
		_ = msg.Nak()
		return
	default:
	}
	r.wg.Add(1)
	go func() {
		defer func() { <-r.sem; r.wg.Done() }()
		r.run(msg)
	}()
}

// acquire takes a worker slot for msg, heartbeating msg while it waits so it is
// not redelivered elsewhere meanwhile; false when the runner stops first.
func (r *runner) acquire(msg jetstream.Msg) bool {
	select {
	case r.sem <- struct{}{}:
		return true
	default:
	}
	hb := time.NewTicker(r.heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-r.stopping:
			return false
		case r.sem <- struct{}{}:
			return true
		case <-hb.C:
			_ = msg.InProgress()
		}
	}
}

func (r *runner) run(msg jetstream.Msg) {
	start := time.Now()
	gauge := r.metrics.JobsInFlightFor(string(r.stage))
	gauge.Inc()
	defer gauge.Dec()

	hbCtx, stopHB := context.WithCancel(r.workCtx)
	go r.heartbeatLoop(hbCtx, msg)
	err := r.handle(r.workCtx, msg)
	stopHB()
	if err == nil {
		failpoint.Inject(r.stage, failpoint.AfterPublish)
	}

	outcome := r.settle(msg, err)
	r.metrics.StageDone(string(r.stage), outcome, time.Since(start))
}

func (r *runner) heartbeatLoop(ctx context.Context, msg jetstream.Msg) {
	t := time.NewTicker(r.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := msg.InProgress(); err != nil {
				r.log.Warn("heartbeat", "step", r.stage, "error", err)
			}
		}
	}
}

// settle acks, naks or terminates msg according to err (or, for a lost lease,
// leaves it to expire) and names the outcome.
func (r *runner) settle(msg jetstream.Msg, err error) string {
	var retry *RetryError
	var outcome string
	var settleErr error
	switch {
	case err == nil:
		outcome, settleErr = "ok", msg.Ack()
	case errors.Is(err, errAborted):
		outcome, settleErr = "aborted", msg.Ack()
	case errors.Is(err, errGaveUp):
		outcome, settleErr = "failed", msg.Ack()
	case errors.Is(err, ErrStale):
		outcome, settleErr = "stale", msg.Ack()
	case errors.Is(err, errLeaseLost):
		outcome = "abandoned"
		r.log.Warn("lease lost: result discarded", "step", r.stage, "error", err)
	case errors.As(err, &retry):
		outcome, settleErr = "retry", msg.NakWithDelay(retry.Delay)
	case errors.Is(err, ErrPermanent):
		outcome, settleErr = "rejected", msg.Term()
		r.log.Warn("message terminated", "step", r.stage, "error", err)
	case errors.Is(err, context.Canceled) && r.workCtx.Err() != nil:
		outcome, settleErr = "shutdown", msg.Nak()
	default:
		outcome = "error"
		delivered := 1
		if md, mdErr := msg.Metadata(); mdErr == nil {
			delivered = int(md.NumDelivered)
		}
		settleErr = msg.NakWithDelay(r.backoff(delivered))
		r.log.Error("stage failed", "step", r.stage, "error", err, "delivered", delivered)
	}
	if settleErr != nil {
		r.log.Warn("settle message", "step", r.stage, "outcome", outcome, "error", settleErr)
	}
	return outcome
}

// stop stops fetching, naks what was fetched but not started (so another process
// gets it at once), and waits for
// in-flight work until ctx ends; then it cancels that work, which hands its jobs
// back, and waits for the hand-back.
func (r *runner) stop(ctx context.Context) {
	if r.stopping == nil {
		return
	}
	r.mu.Lock()
	close(r.stopping)
	cc := r.cc
	r.mu.Unlock()
	if cc != nil {
		cc.Drain() // buffered messages reach dispatch, which naks them
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
		r.log.Warn("shutdown deadline: cancelling in-flight work", "step", r.stage)
		r.cancelWork()
		<-done
	}
	r.cancelWork()
}
