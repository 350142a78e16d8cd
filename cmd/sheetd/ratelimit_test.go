package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// TestTwoSheetdShareLLMRPM runs two sheetd on one NATS server with LLM_RPM=120
// against a provider that allows 120 requests a minute (429 with Retry-After
// beyond), with more jobs queued than a minute's calls can serve. For 75 s
// after the first call, the two together never send more than 126 requests
// (the limit and 5%) in any span of a minute, and at most 5% of their calls
// are answered 429.
func TestTwoSheetdShareLLMRPM(t *testing.T) {
	t.Parallel()
	const rpm, span = 120, 75 * time.Second
	srv := testnats.Start(t)
	rl := fakellm.NewRateLimit(rpm, time.Minute)
	llm := fakellm.New(t, rl.Wrap(func(req fakellm.Request) fakellm.Reply {
		switch req.Step {
		case "design":
			return fakellm.Reply{Content: "An outline: fractions, twelve exercises, an answer key."}
		case "latex":
			return fakellm.Reply{Content: testLatex}
		}
		return fakellm.Reply{Content: "fractions, grade 5"}
	}))
	d := &deployment{t: t, natsURL: srv.ClientURL(), llm: llm, env: []string{fmt.Sprintf("LLM_RPM=%d", rpm)}}
	a, b := d.startWorker("sheetd-a"), d.startWorker("sheetd-b")

	c := dial(t, testContext(t), srv.ClientURL())
	ids := newIDs(50) // about 4 calls each: 200 calls, well over 75 s of 120/min
	c.submitMany(ids, func(i int) string { return fmt.Sprintf("%s (%d)", testPrompt, i) })
	deadline := time.Now().Add(3 * time.Minute)
	for {
		arr := rl.Arrivals()
		if len(arr) > 0 && time.Since(arr[0].At) >= span {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in 3 minutes: the provider saw too few to measure a minute", len(arr))
		}
		time.Sleep(500 * time.Millisecond)
	}
	arr := rl.Arrivals()
	for len(arr) > 0 && arr[len(arr)-1].At.Sub(arr[0].At) > span {
		arr = arr[:len(arr)-1]
	}
	total, limited := 0, 0
	for _, x := range arr {
		total++
		if x.Limited {
			limited++
		}
	}
	most := fakellm.MaxInAnyWindow(arr, time.Minute)
	waitsA := a.metric("sheetpipe_llm_ratelimit_wait_seconds_count{model=\"gpt-4o-mini\"}")
	waitsB := b.metric("sheetpipe_llm_ratelimit_wait_seconds_count{model=\"gpt-4o-mini\"}")
	t.Logf("%d calls in %s (per minute window %v), at most %d in any minute, %d answered 429; waits recorded: a %v, b %v",
		total, span, rl.PerWindow(), most, limited, waitsA, waitsB)
	if most > rpm*105/100 {
		t.Fatalf("two sheetd sharing LLM_RPM=%d sent %d requests within one minute (more than 5%% over)", rpm, most)
	}
	if limited*20 > total {
		t.Fatalf("%d of %d calls answered 429 (more than 5%%)", limited, total)
	}
	if waitsA == 0 || waitsB == 0 {
		t.Fatalf("sheetpipe_llm_ratelimit_wait_seconds counts a %v, b %v: both sheetd should have waited for the shared limit", waitsA, waitsB)
	}
}
