package llmlimit_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/llmlimit"
)

// twoLimiters starts one nats-server and returns two Limiters with cfg, each on
// its own connection, as two sheetd would have.
func twoLimiters(t *testing.T, cfg llmlimit.Config) (*llmlimit.Limiter, *llmlimit.Limiter) {
	t.Helper()
	srv := testnats.Start(t)
	var out [2]*llmlimit.Limiter
	for i := range out {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatalf("jetstream: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out[i], err = llmlimit.New(ctx, js, cfg)
		if err != nil {
			t.Fatalf("limiter %d: %v", i, err)
		}
	}
	return out[0], out[1]
}

// maxIn is the most times within any span shorter than d.
func maxIn(times []time.Time, d time.Duration) int {
	slices.SortFunc(times, time.Time.Compare)
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func TestTwoLimitersShareOnePace(t *testing.T) {
	t.Parallel()
	// 600 a minute: one call per 100 ms; a tolerance of 200 ms lets a burst of 3.
	a, b := twoLimiters(t, llmlimit.Config{RPM: 600, Tolerance: 200 * time.Millisecond})
	const perWorker, workers = 8, 3
	var (
		mu       sync.Mutex
		admitted []time.Time
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, l := range []*llmlimit.Limiter{a, b} {
		for range workers {
			wg.Go(func() {
				for range perWorker {
					if err := l.Wait(ctx, "gpt-4o-mini", 10); err != nil {
						t.Errorf("wait: %v", err)
						return
					}
					mu.Lock()
					admitted = append(admitted, time.Now())
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(admitted) != 2*workers*perWorker {
		t.Fatalf("admitted %d calls, want %d", len(admitted), 2*workers*perWorker)
	}
	// Within any second: 10 at the pace, 3 of burst, 1 for the span's edges.
	if n := maxIn(admitted, time.Second); n > 14 {
		t.Fatalf("%d calls within one second from two limiters sharing 600/min: the pace is not shared", n)
	}
	ops, reserved := a.Ops()+b.Ops(), a.Reserved()+b.Reserved()
	if reserved != int64(len(admitted)) {
		t.Fatalf("%d slots reserved for %d calls", reserved, len(admitted))
	}
	t.Logf("%d calls, %d KV operations (%.2f per call) with 6 callers on 2 connections", len(admitted), ops, float64(ops)/float64(len(admitted)))
}

func TestUncontendedCallCostsTwoOperations(t *testing.T) {
	t.Parallel()
	a, _ := twoLimiters(t, llmlimit.Config{RPM: 60000})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 20 {
		if err := a.Wait(ctx, "gpt-4o-mini", 10); err != nil {
			t.Fatalf("wait: %v", err)
		}
	}
	if ops := a.Ops(); ops != 40 {
		t.Fatalf("20 calls took %d KV operations, want 40 (one read and one write each)", ops)
	}
}

func TestTokensPerMinutePaceCalls(t *testing.T) {
	t.Parallel()
	// 6000 tokens a minute: a call of 100 tokens every second; no burst beyond one.
	a, b := twoLimiters(t, llmlimit.Config{TPM: 6000, Tolerance: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	for i := range 4 {
		l := []*llmlimit.Limiter{a, b}[i%2]
		if err := l.Wait(ctx, "m", 100); err != nil {
			t.Fatalf("wait: %v", err)
		}
	}
	if d := time.Since(start); d < 2900*time.Millisecond {
		t.Fatalf("4 calls of 100 tokens at 6000 tokens/min took %s, want at least 3s", d)
	}
}

func TestReportedTokensCorrectTheEstimate(t *testing.T) {
	t.Parallel()
	// Estimates of 10 tokens, the provider reports 100: the later calls pay for
	// it (a call's correction is charged at the process's next reservation, so
	// the 4th call waits for 10 + 100 + 100 tokens: 2.1 s; without it, 0.3 s).
	a, _ := twoLimiters(t, llmlimit.Config{TPM: 6000, Tolerance: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	for range 4 {
		if err := a.Wait(ctx, "m", 10); err != nil {
			t.Fatalf("wait: %v", err)
		}
		a.Observe("m", 100, http.StatusOK, nil)
	}
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Fatalf("4 calls that used 100 tokens each at 6000 tokens/min took %s, want at least 2s", d)
	}
}

func TestSlotPastDeadlineFailsAtOnce(t *testing.T) {
	t.Parallel()
	a, b := twoLimiters(t, llmlimit.Config{RPM: 1, Tolerance: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Wait(ctx, "m", 1); err != nil {
		t.Fatalf("first call: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	start := time.Now()
	err := b.Wait(short, "m", 1)
	if !errors.Is(err, llmlimit.ErrPastDeadline) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second call within a minute at 1/min: err %v, want ErrPastDeadline and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refused after %s, want at once", d)
	}
}

func TestProviderHintIsShared(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
	}{
		{"remaining requests low", http.StatusOK, http.Header{"X-Ratelimit-Remaining-Requests": {"0"},
			"X-Ratelimit-Reset-Requests": {"1.5s"}, "X-Ratelimit-Limit-Requests": {"100"}}},
		{"remaining tokens low", http.StatusOK, http.Header{"X-Ratelimit-Remaining-Tokens": {"0"},
			"X-Ratelimit-Reset-Tokens": {"1s500ms"}, "X-Ratelimit-Limit-Tokens": {"100000"}}},
		{"429 with Retry-After", http.StatusTooManyRequests, http.Header{"Retry-After": {"2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := twoLimiters(t, llmlimit.Config{RPM: 60000})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Wait(ctx, "m", 1); err != nil {
				t.Fatalf("wait: %v", err)
			}
			start := time.Now()
			a.Observe("m", 0, tc.status, tc.header)
			if err := b.Wait(ctx, "m", 1); err != nil {
				t.Fatalf("wait: %v", err)
			}
			if d := time.Since(start); d < 1400*time.Millisecond {
				t.Fatalf("the other process's next call came after %s, want the provider's reset (>= 1.5s)", d)
			}
		})
	}
}

func TestRemainingHintsAvoid429s(t *testing.T) {
	t.Parallel()
	// The provider allows 5 calls per 1.5 s window and says how many are left;
	// the limiter's own pace (6000/min) would send far more.
	rl := fakellm.NewRateLimit(5, 1500*time.Millisecond)
	rl.Hints = true
	fake := fakellm.New(t, rl.Wrap(fakellm.Script(fakellm.Reply{Content: "a design"})))
	a, _ := twoLimiters(t, llmlimit.Config{RPM: 6000})
	client, err := ai.New(ai.Config{Provider: ai.ProviderOpenAI, BaseURL: fake.URL, APIKey: "k", Limiter: a})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok := 0
	for ok < 12 {
		if _, err := client.GenerateDesign(ctx, nil, "fractions"); err == nil {
			ok++
		} else if ctx.Err() != nil {
			t.Fatalf("12 answers not reached: %v", err)
		}
	}
	total, limited := rl.Counts()
	if limited > 0 {
		t.Fatalf("%d of %d calls answered 429 (per window %v): the remaining-requests hints did not slow the limiter", limited, total, rl.PerWindow())
	}
}

func TestDeletedBucketIsCreatedAgain(t *testing.T) {
	t.Parallel()
	srv := testnats.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := llmlimit.New(ctx, srv.JS, llmlimit.Config{RPM: 60000})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(ctx, "m", 1); err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := srv.JS.DeleteKeyValue(ctx, llmlimit.Bucket); err != nil {
		t.Fatalf("delete bucket: %v", err)
	}
	if err := l.Wait(ctx, "m", 1); err != nil {
		t.Fatalf("wait after the bucket was deleted: %v", err)
	}
	if _, err := srv.JS.KeyValue(ctx, llmlimit.Bucket); err != nil {
		t.Fatalf("bucket not created again: %v", err)
	}
}

func TestRetryAfterHoldsCallsAlreadyReserved(t *testing.T) {
	t.Parallel()
	// 60 a minute: the second call's slot is a second after the first; a 429
	// with Retry-After: 3 arrives while it sleeps towards that slot.
	a, _ := twoLimiters(t, llmlimit.Config{RPM: 60, Tolerance: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Wait(ctx, "m", 1); err != nil {
		t.Fatalf("wait: %v", err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- a.Wait(ctx, "m", 1) }()
	for a.Reserved() < 2 { // the second call has its slot
		select {
		case err := <-done:
			t.Fatalf("second call returned before the 429 came: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	a.Observe("m", 0, http.StatusTooManyRequests, http.Header{"Retry-After": {"3"}})
	if err := <-done; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if d := time.Since(start); d < 2900*time.Millisecond {
		t.Fatalf("a call reserved before a 429 with Retry-After: 3 went after %s, want >= 3s", d)
	}
}

func TestNATSDownCallWaitsNotUnpaced(t *testing.T) {
	t.Parallel()
	srv := testnats.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := llmlimit.New(ctx, srv.JS, llmlimit.Config{RPM: 60000})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if err := l.Wait(short, "m", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with NATS down: err %v, want the context's deadline (the call waits, it is not let through)", err)
	}
}
