package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/failpoint"
	"github.com/sheetpipe/sheetpipe/worker"
)

// handlerFunc is one stage's work on one message; its error decides the
// settlement (package worker): nil, ErrStale, errAborted or errGaveUp ack, a
// storage refusal (events.ErrStorage) nak with delay and a pause of fetching,
// *RetryError nak with delay, ErrPermanent term, errLeaseLost leaves the delivery
// unsettled, anything else nak with back-off by delivery count.
type handlerFunc = worker.Handler

// stuckAfter is how long a worker may wait for the acknowledgements of its
// publishes before the process reports it stuck (Pipeline.Consuming, and so
// /readyz): well past the bounded wait of settleScope, so only a wait that
// escaped its deadline counts.
const stuckAfter = 2 * (publishAckTimeout + republishTimeout)

// startStage runs stage st on one worker.Runner that consumes every queue of the
// stage (events.QueuesOf, highest priority first) into one pool of workers.
func (p *Pipeline) startStage(ctx context.Context, st events.Stage, handle handlerFunc) (*worker.Runner, error) {
	queues := events.QueuesOf(st)
	durables := make([]string, len(queues))
	for i, q := range queues {
		durables[i] = q.Durable()
	}
	cfg := worker.Config{
		Name:        "stage " + string(st),
		Stream:      events.StreamJobs,
		Durables:    durables,
		Handler:     handle,
		Concurrency: p.cfg.Concurrency[st],
		Heartbeat:   p.cfg.AckWait / 3,
		Backoff:     p.cfg.backoff,
		Log:         p.log.With("step", st),
		InFlight:    p.metrics.JobsInFlightFor(string(st)),
		Done:        func(outcome string, d time.Duration) { p.metrics.StageDone(string(st), outcome, d) },
		Scope:       p.scope(st),
		StuckAfter:  stuckAfter,
		Storage:     p.storage,
		Hold:        p.hold(st),
	}
	p.fairness(st, &cfg)
	r, err := worker.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := r.Start(ctx, p.js); err != nil {
		return nil, err
	}
	return r, nil
}

// hold is what holds the fetching of stage st (worker.Config.Hold): the LLM's
// hold (Deps.LLMHold) for the stages that ask it, nothing for the others.
func (p *Pipeline) hold(st events.Stage) func() error {
	switch st {
	case events.StageDesign, events.StageLatex, events.StageFix, events.StageMeta:
		return p.llmHold
	}
	return nil
}

// scope opens a scope (scope.go) for each ticket of stage st; once the handler
// returns, the runner collects the acknowledgements of its publishes
// (settleScope) before it settles the ticket.
func (p *Pipeline) scope(st events.Stage) worker.Scope {
	return func(ctx context.Context) (context.Context, func(error) error) {
		ctx, sc := withScope(ctx)
		return ctx, func(err error) error {
			defer sc.close()
			if serr := p.settleScope(ctx, sc); err == nil {
				err = serr
			}
			if err == nil {
				failpoint.Inject(st, failpoint.AfterPublish)
			}
			return err
		}
	}
}

// Consuming is nil while every stage this process runs consumes all its queues'
// consumers and none of its workers is stuck waiting on the server; otherwise
// it names the consumers it waits for to come back and the stuck workers.
func (p *Pipeline) Consuming() error {
	p.mu.Lock()
	runners := p.runners
	p.mu.Unlock()
	var errs []string
	for _, r := range runners {
		if err := r.Consuming(); err != nil {
			errs = append(errs, err.Error())
		}
		if err := r.Stuck(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// fairness sets up how stage st's runner shares its workers among users
// (docs/fairness.md): unless the pipeline is FIFO, users take turns within a
// priority; with a user cap, a user's tickets beyond it wait while the cap's
// places, shared by every process in bucket user_slots, are taken.
func (p *Pipeline) fairness(st events.Stage, cfg *worker.Config) {
	limit := p.cfg.UserConcurrency[st]
	if p.cfg.FIFO && limit == 0 {
		return
	}
	cfg.Key, cfg.Fair, cfg.Window = ticketUser, !p.cfg.FIFO, p.cfg.FairWindow
	if limit > 0 {
		cfg.KeyLimit = limit
		cfg.Limiter = &worker.KVLimiter{KV: p.userSlots, Prefix: string(st), N: limit, TTL: p.cfg.AckWait}
	}
}

// ticketUser is the user of a ticket or a request: its user_id ("" when it has
// none or does not decode).
func ticketUser(msg jetstream.Msg) string {
	var v struct {
		UserID string `json:"user_id"`
	}
	_ = json.Unmarshal(msg.Data(), &v)
	return v.UserID
}
