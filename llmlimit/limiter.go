package llmlimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of the shared rate-limit state.
const Bucket = "llm_ratelimit"

// Config configures a Limiter.
type Config struct {
	// RPM is the requests per minute per model all sheetd send together
	// (LLM_RPM); 0 is no request limit. Default 0.
	RPM int
	// TPM is the tokens per minute per model (LLM_TPM); 0 is no token limit.
	// Default 0.
	TPM int
	// Tolerance is how far ahead of the steady pace a call may start, so the
	// burst after an idle spell: about Tolerance × RPM ÷ 60 calls more. Default 1s.
	Tolerance time.Duration
	// MaxHintWait caps a wait a provider's header asks for (Retry-After, a
	// reset time). Default 1m.
	MaxHintWait time.Duration
	// Replicas of the bucket when New creates it. Default 1.
	Replicas int
	// Log receives warnings (NATS unreachable). Default: slog.Default().
	Log *slog.Logger
	// Waited, when set, is told how long each admitted call waited for its slot.
	// Default: none.
	Waited func(model string, d time.Duration)
}

func (c Config) withDefaults() Config {
	if c.Tolerance == 0 {
		c.Tolerance = time.Second
	}
	if c.MaxHintWait == 0 {
		c.MaxHintWait = time.Minute
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.RPM < 0 || c.TPM < 0 {
		errs = append(errs, fmt.Errorf("%w: RPM %d and TPM %d must not be negative", ErrConfig, c.RPM, c.TPM))
	}
	if c.RPM == 0 && c.TPM == 0 {
		errs = append(errs, fmt.Errorf("%w: set RPM, TPM or both", ErrConfig))
	}
	if c.Tolerance < 0 || c.MaxHintWait < 0 {
		errs = append(errs, fmt.Errorf("%w: Tolerance and MaxHintWait must not be negative", ErrConfig))
	}
	return errors.Join(errs...)
}

// Limiter paces LLM calls against the state shared in Bucket. It is safe for
// concurrent use.
type Limiter struct {
	cfg  Config
	js   jetstream.JetStream
	kv   atomic.Pointer[jetstream.KeyValue] // replaced when the bucket is created again
	pace pace
	ops  atomic.Int64 // KV operations so far
	res  atomic.Int64 // slots reserved so far

	mu     sync.Mutex
	models map[string]*model
}

// model is this process's side of one model's state.
type model struct {
	key  string
	turn chan struct{} // one reservation of this process at a time

	mu      sync.Mutex
	pending int64 // token correction to add at the next reservation
	estSum  int64 // sum of the estimates charged
	estN    int64
	gap     int64 // the shared Gap last seen
	until   int64 // and its GapUntil
	// notBefore (a 429's Retry-After) and next (a gap after the last call
	// while the gap lasts) come from this process's own answers: calls that
	// reserved their slot before such an answer still wait for them.
	notBefore int64
	next      int64
}

// New returns a Limiter on the bucket, creating the bucket when absent.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Limiter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &Limiter{cfg: cfg, js: js, models: map[string]*model{}}
	if err := l.createBucket(ctx); err != nil {
		return nil, err
	}
	if cfg.RPM > 0 {
		l.pace.reqInterval = time.Minute / time.Duration(cfg.RPM)
	}
	if cfg.TPM > 0 {
		l.pace.tokInterval = time.Minute / time.Duration(cfg.TPM)
	}
	l.pace.tolerance = cfg.Tolerance
	return l, nil
}

// createBucket creates the bucket, or binds it when it exists.
func (l *Limiter) createBucket(ctx context.Context) error {
	kv, err := l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket,
		Description: "sheetpipe LLM rate limit: one GCRA state per model", History: 1,
		Storage: jetstream.MemoryStorage, Replicas: l.cfg.Replicas, TTL: stateTTL})
	if err != nil {
		return fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	l.kv.Store(&kv)
	return nil
}

// stateTTL drops a model's state after an hour unused: it is then as if fully
// refilled, which an hour without calls makes it anyway.
const stateTTL = time.Hour

// Ops returns the KV operations (reads and writes) the Limiter made so far.
func (l *Limiter) Ops() int64 { return l.ops.Load() }

// Reserved returns the slots the Limiter reserved so far (calls admitted now
// or later).
func (l *Limiter) Reserved() int64 { return l.res.Load() }

func (l *Limiter) model(name string) *model {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.models[name]
	if !ok {
		m = &model{key: modelKey(name), turn: make(chan struct{}, 1)}
		l.models[name] = m
	}
	return m
}

// Wait reserves the next slot of model for a call of about tokens tokens and
// sleeps until it. It returns ctx's error when ctx ends first, and an error
// wrapping ErrPastDeadline and context.DeadlineExceeded, without reserving,
// when the slot is past ctx's deadline.
func (l *Limiter) Wait(ctx context.Context, name string, tokens int) error {
	start := time.Now()
	m := l.model(name)
	select {
	case m.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	slot, err := l.reserve(ctx, m, int64(max(tokens, 0)))
	<-m.turn
	if err != nil {
		return err
	}
	for {
		d := m.admit(slot)
		if d <= 0 {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if l.cfg.Waited != nil {
		l.cfg.Waited(name, time.Since(start))
	}
	return nil
}

// admit returns how long a call whose slot is slot must still wait, after
// the provider's answers this process saw since it reserved; 0 admits it.
func (m *model) admit(slot time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().UnixNano()
	gapped := m.gap > 0 && now < m.until
	at := max(slot.UnixNano(), m.notBefore)
	if gapped {
		at = max(at, m.next)
	}
	if at > now {
		return time.Duration(at - now)
	}
	if gapped {
		m.next = now + m.gap
	}
	return 0
}

// reserve takes the next slot with a compare-and-swap on the model's key,
// retrying on a revision mismatch and, with a growing pause, while NATS fails.
func (l *Limiter) reserve(ctx context.Context, m *model, tokens int64) (time.Time, error) {
	pause := 50 * time.Millisecond
	warned, recreated := false, false
	for {
		slot, err := l.tryReserve(ctx, m, tokens)
		switch {
		case err == nil:
			return slot, nil
		case errors.Is(err, ErrPastDeadline), ctx.Err() != nil:
			return time.Time{}, err
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // another process wrote first: read again
		}
		if !warned {
			l.cfg.Log.WarnContext(ctx, "llm rate limit: shared state unavailable, waiting", "key", m.key, "error", err)
			warned = true
		}
		// The bucket may be gone (deleted, or lost with a memory-only server):
		// create it again (once without a pause), which fails too while NATS
		// is unreachable.
		if !recreated && l.createBucket(ctx) == nil {
			recreated = true
			continue
		}
		if recreated {
			_ = l.createBucket(ctx)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return time.Time{}, fmt.Errorf("llm rate limit: %w (last error: %v)", ctx.Err(), err)
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// tryReserve is one read and one conditional write of the model's state.
func (l *Limiter) tryReserve(ctx context.Context, m *model, tokens int64) (time.Time, error) {
	s, rev, err := l.load(ctx, m)
	if err != nil {
		return time.Time{}, err
	}
	m.mu.Lock()
	extra := m.pending
	m.gap, m.until = s.Gap, s.GapUntil
	m.mu.Unlock()
	slot, next := l.pace.reserve(s, time.Now(), tokens, extra)
	if dl, ok := ctx.Deadline(); ok && slot.After(dl) {
		return time.Time{}, fmt.Errorf("%w (in %s): %w", ErrPastDeadline, time.Until(slot).Round(time.Millisecond), context.DeadlineExceeded)
	}
	if err := l.store(ctx, m, next, rev); err != nil {
		return time.Time{}, err
	}
	l.res.Add(1)
	m.mu.Lock()
	m.pending -= extra
	m.estSum += tokens
	m.estN++
	m.mu.Unlock()
	return slot, nil
}

// load reads the model's state; rev 0 means absent.
func (l *Limiter) load(ctx context.Context, m *model) (state, uint64, error) {
	l.ops.Add(1)
	e, err := (*l.kv.Load()).Get(ctx, m.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return state{}, 0, nil
	}
	if err != nil {
		return state{}, 0, fmt.Errorf("read %s: %w", m.key, err)
	}
	var s state
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		// A value no sheetd wrote: start afresh over it.
		l.cfg.Log.WarnContext(ctx, "llm rate limit: unreadable state replaced", "key", m.key, "error", err)
		return state{}, e.Revision(), nil
	}
	return s, e.Revision(), nil
}

// store writes s if the key is still at rev (absent when rev is 0).
func (l *Limiter) store(ctx context.Context, m *model, s state, rev uint64) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	l.ops.Add(1)
	kv := *l.kv.Load()
	if rev == 0 {
		_, err = kv.Create(ctx, m.key, b)
	} else {
		_, err = kv.Update(ctx, m.key, b, rev)
	}
	return err
}
