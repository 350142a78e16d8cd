package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/worker"
)

const (
	stream  = "WORK"
	subject = "work"
	durable = "work"
)

// env is one test's JetStream server with stream WORK and its consumer work.
type env struct {
	t   *testing.T
	ctx context.Context
	js  jetstream.JetStream
	nc  *nats.Conn
}

func newEnv(t *testing.T, ackWait time.Duration) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ns := testnats.Start(t)
	if _, err := ns.JS.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.JS.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: durable,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: 10}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, js: ns.JS, nc: ns.NC}
}

// publish sends data and returns its stream sequence.
func (e *env) publish(data string) uint64 {
	e.t.Helper()
	ack, err := e.js.Publish(e.ctx, subject, []byte(data))
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// start runs a runner on the consumer and stops it at the end of the test.
func (e *env) start(cfg worker.Config) *worker.Runner {
	e.t.Helper()
	cfg.Name, cfg.Stream, cfg.Durables = "test", stream, []string{durable}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 1
	}
	r, err := worker.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := r.Start(e.ctx, e.js); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Stop(ctx)
	})
	return r
}

// settled waits until the consumer has delivered and settled, for good, every
// message up to seq.
func (e *env) settled(seq uint64) {
	e.t.Helper()
	e.waitInfo(fmt.Sprintf("settled up to %d", seq), func(ci *jetstream.ConsumerInfo) bool {
		return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= seq
	})
}

// terminations follows the server's advisories of terminated messages.
func (e *env) terminations() <-chan uint64 {
	e.t.Helper()
	seqs := make(chan uint64, 16)
	sub, err := e.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."+stream+"."+durable, func(m *nats.Msg) {
		var adv struct {
			StreamSeq uint64 `json:"stream_seq"`
		}
		if jsonErr := json.Unmarshal(m.Data, &adv); jsonErr == nil {
			seqs <- adv.StreamSeq
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return seqs
}

// attempt is one delivery the handler got.
type attempt struct {
	delivered   uint64
	start, done time.Time
}

// A message whose handler answers each delivery with the next error of a script
// (nil once it runs out) is settled as its error's kind says: acked, terminated,
// naked with the RetryError's delay, with the back-off of its delivery count or
// the storage pause, or left unsettled until AckWait.
func TestSettlementByErrorKind(t *testing.T) {
	const ackWait = 2 * time.Second
	backoff := func(n int) time.Duration { return time.Duration(n) * 1200 * time.Millisecond }
	for _, tc := range []struct {
		name       string
		script     []error
		outcomes   []string
		terminated bool
		minGap     time.Duration // between the first attempt's end and the second's start
	}{
		{name: "nil acks", script: nil, outcomes: []string{"ok"}},
		{name: "stale acks", script: []error{fmt.Errorf("%w: moved on", worker.ErrStale)}, outcomes: []string{"stale"}},
		{name: "gave up acks", script: []error{fmt.Errorf("%w: enough", worker.ErrGaveUp)}, outcomes: []string{"failed"}},
		{name: "named outcome", script: []error{worker.WithOutcome("aborted", worker.ErrStale)}, outcomes: []string{"aborted"}},
		{name: "permanent terms", script: []error{fmt.Errorf("%w: bad", worker.ErrPermanent)}, outcomes: []string{"rejected"}, terminated: true},
		{name: "logged permanent terms", script: []error{worker.Logged(worker.ErrPermanent)}, outcomes: []string{"rejected"}, terminated: true},
		{name: "retry naks with its delay", script: []error{&worker.RetryError{Delay: 1500 * time.Millisecond, Err: errors.New("busy")}},
			outcomes: []string{"retry", "ok"}, minGap: 1500 * time.Millisecond},
		{name: "other naks with back-off", script: []error{errors.New("boom")}, outcomes: []string{"error", "ok"}, minGap: backoff(1)},
		{name: "storage naks with the pause", script: []error{&events.StorageError{Reason: "disk full"}},
			outcomes: []string{"storage", "ok"}, minGap: time.Second},
		{name: "lease lost left to AckWait", script: []error{fmt.Errorf("job moved: %w", worker.ErrLeaseLost)},
			outcomes: []string{"abandoned", "ok"}, minGap: ackWait / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ackWait)
			terms := e.terminations()
			var mu sync.Mutex
			var attempts []attempt
			var outcomes []string
			var r *worker.Runner
			var pauseReport error // Consuming() as the storage refusal was settled
			r = e.start(worker.Config{
				Backoff: backoff,
				Done: func(outcome string, _ time.Duration) {
					mu.Lock()
					outcomes = append(outcomes, outcome)
					if outcome == "storage" {
						pauseReport = r.Consuming()
					}
					mu.Unlock()
				},
				Handler: func(_ context.Context, msg jetstream.Msg) error {
					md, err := msg.Metadata()
					if err != nil {
						return err
					}
					if string(msg.Data()) == "sentinel" {
						return worker.ErrPermanent
					}
					mu.Lock()
					defer mu.Unlock()
					a := attempt{delivered: md.NumDelivered, start: time.Now()}
					var herr error
					if n := int(md.NumDelivered); n <= len(tc.script) {
						herr = tc.script[n-1]
					}
					a.done = time.Now()
					attempts = append(attempts, a)
					return herr
				},
			})
			seq := e.publish("work")
			e.settled(seq)
			// Advisories come in order: once the sentinel's is in, any of seq's is too.
			sentinel := e.publish("sentinel")
			e.settled(sentinel)
			var termed []uint64
			for !slices.Contains(termed, sentinel) {
				select {
				case s := <-terms:
					termed = append(termed, s)
				case <-time.After(30 * time.Second):
					t.Fatalf("no termination advisory for the sentinel within 30s (got %v)", termed)
				}
			}
			if got := slices.Contains(termed, seq); got != tc.terminated {
				t.Fatalf("terminated %v, want %v", got, tc.terminated)
			}

			// Every attempt's outcome and the sentinel's ("rejected") are recorded.
			deadline := time.Now().Add(10 * time.Second)
			mu.Lock()
			defer mu.Unlock()
			for len(outcomes) < len(attempts)+1 && time.Now().Before(deadline) {
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
				mu.Lock()
			}
			got := slices.Clone(outcomes)
			if i := slices.Index(got, "rejected"); i >= 0 {
				got = slices.Delete(got, i, i+1)
			}
			if !slices.Equal(got, tc.outcomes) {
				t.Fatalf("outcomes %v (one rejected is the sentinel's), want %v", outcomes, tc.outcomes)
			}
			if len(attempts) != len(tc.outcomes) {
				t.Fatalf("%d attempts, want %d", len(attempts), len(tc.outcomes))
			}
			for i, a := range attempts {
				if a.delivered != uint64(i+1) {
					t.Fatalf("attempt %d was delivery %d", i+1, a.delivered)
				}
			}
			if len(attempts) == 2 {
				if gap := attempts[1].start.Sub(attempts[0].done); gap < tc.minGap {
					t.Fatalf("redelivered %s after the first attempt, want at least %s", gap, tc.minGap)
				}
			}
			if wantPause := slices.Contains(tc.outcomes, "storage"); wantPause != (pauseReport != nil) ||
				wantPause && !strings.Contains(pauseReport.Error(), "test paused fetching: storage full since") {
				t.Fatalf("Consuming() = %v while paused for storage (pause expected: %v)", pauseReport, wantPause)
			}
			if err := r.Consuming(); err != nil {
				t.Fatalf("Consuming() = %v after the work, want nil", err)
			}
		})
	}
}

// Stop hands back at once what was fetched but not started, waits for the work
// in flight to finish and settle it, and only then returns.
func TestStopWaitsForWorkInFlight(t *testing.T) {
	e := newEnv(t, time.Minute) // a hand-back after AckWait would fail the waits below
	started, release := make(chan struct{}), make(chan struct{})
	r := e.start(worker.Config{Handler: func(_ context.Context, msg jetstream.Msg) error {
		if string(msg.Data()) == "first" {
			close(started)
			<-release
		}
		return nil
	}})
	first := e.publish("first")
	<-started
	second := e.publish("second") // waits for the one worker
	e.waitInfo("both messages delivered to the runner", func(ci *jetstream.ConsumerInfo) bool { return ci.NumAckPending == 2 })

	stopped := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r.Stop(ctx)
		close(stopped)
	}()
	next := e.redelivered(second) // handed back while the first is in work
	select {
	case <-stopped:
		t.Fatal("Stop returned while a message was in work")
	default:
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return within 30s of the work's end")
	}
	e.waitInfo("the message in work acked", func(ci *jetstream.ConsumerInfo) bool { return ci.AckFloor.Stream >= first })
	if next != 2 {
		t.Fatalf("the waiting message came back as delivery %d, want 2", next)
	}
}

// Work still in flight when Stop's context ends is cancelled and handed back
// (naked, not left to AckWait), and the handler's cancellation is settled as a
// shutdown.
func TestStopDeadlineHandsWorkBack(t *testing.T) {
	e := newEnv(t, time.Minute)
	started := make(chan struct{})
	var mu sync.Mutex
	var outcomes []string
	r := e.start(worker.Config{
		Done: func(outcome string, _ time.Duration) {
			mu.Lock()
			outcomes = append(outcomes, outcome)
			mu.Unlock()
		},
		Handler: func(ctx context.Context, _ jetstream.Msg) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}})
	seq := e.publish("work")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r.Stop(ctx)
	if n := e.redelivered(seq); n != 2 {
		t.Fatalf("handed back as delivery %d, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(outcomes, []string{"shutdown"}) {
		t.Fatalf("outcomes %v, want [shutdown]", outcomes)
	}
}

// waitInfo waits until the consumer's info satisfies ok, for at most 30s.
func (e *env) waitInfo(what string, ok func(*jetstream.ConsumerInfo) bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := e.js.Consumer(e.ctx, stream, durable)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok(c.CachedInfo()) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("not %s within 30s: %+v", what, c.CachedInfo())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redelivered fetches message seq from the consumer, in a 30s wait (well within
// its AckWait of a minute: only a nak brings it back that soon), acks it and
// returns its delivery count.
func (e *env) redelivered(seq uint64) uint64 {
	e.t.Helper()
	c, err := e.js.Consumer(e.ctx, stream, durable)
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				e.t.Fatal(err)
			}
			_ = msg.Ack()
			if md.Sequence.Stream == seq {
				return md.NumDelivered
			}
		}
	}
	e.t.Fatalf("message %d not handed back within 30s", seq)
	return 0
}
