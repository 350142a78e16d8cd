package service_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// refusedPrompt is a prompt the fake provider refuses (400) whenever it is up.
const refusedPrompt = "a worksheet the provider refuses"

// TestLLMOutageStrandsNothing: 20 jobs and one the provider refuses are
// submitted while the provider answers every call with 503 for about 20s
// (LLM_BREAKER_THRESHOLD=3, LLM_BREAKER_PROBE_INTERVAL=1s). /readyz turns
// not ready naming the LLM while /healthz stays 200 and
// sheetpipe_llm_breaker_open is 1; once the provider answers again /readyz is
// ready with no restart, every one of the 20 jobs completes, none of them ever
// was in waiting_manual and only the failures before the breaker opened
// counted a retry, while the refused job still ends in waiting_manual.
func TestLLMOutageStrandsNothing(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	ok := fakellm.ByStep(map[string]fakellm.Handler{
		"design":        fakellm.Script(fakellm.Reply{Content: "A worksheet of fraction sums."}),
		"latex":         fakellm.Script(fakellm.Reply{Content: diskLatex}),
		fakellm.AnyStep: fakellm.Script(fakellm.Reply{Content: "fractions"}),
	})
	llm := fakellm.New(t, func(req fakellm.Request) fakellm.Reply {
		switch {
		case down.Load():
			return fakellm.Reply{Status: http.StatusServiceUnavailable, Content: "provider down"}
		case strings.Contains(req.LastUser(), refusedPrompt):
			return fakellm.Reply{Status: http.StatusBadRequest, Content: "this prompt is refused"}
		}
		return ok(req)
	})
	cfg := baseConfig(t)
	cfg.LLMProvider, cfg.OpenAIKey, cfg.OpenAIBaseURL = "openai", "test", llm.URL
	cfg.LLMBreakerThreshold, cfg.LLMBreakerProbeInterval = 3, time.Second
	startService(t, cfg)
	base := "http://" + cfg.HTTPAddr

	nc, err := nats.Connect("nats://" + cfg.NATSListen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	seen := map[string][]events.StatusEvent{}
	sub, err := nc.Subscribe(events.SubjectStatus, func(m *nats.Msg) {
		var ev events.StatusEvent
		if json.Unmarshal(m.Data, &ev) == nil {
			mu.Lock()
			seen[ev.JobID] = append(seen[ev.JobID], ev)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	outage := time.Now()
	var jobs []string
	for range 20 {
		jobs = append(jobs, submitPrompt(t, base, "fractions"))
	}
	refused := submitPrompt(t, base, refusedPrompt)

	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "llm: LLM provider unavailable since", 30*time.Second)
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answered %d during the outage, want 200", code)
	}
	waitStatus(t, base+"/metrics", http.StatusOK, "sheetpipe_llm_breaker_open 1", 5*time.Second)
	time.Sleep(time.Until(outage.Add(20 * time.Second))) // the outage lasts 20s
	for _, id := range append(jobs, refused) {
		if j := getJob(t, base, id); j.Status == events.StatusWaitingManual || j.Status == events.StatusCompleted {
			t.Fatalf("job %s is %s during the outage: %+v", id, j.Status, j)
		}
	}
	down.Store(false)

	waitStatus(t, base+"/readyz", http.StatusOK, "ready", 30*time.Second)
	waitStatus(t, base+"/metrics", http.StatusOK, "sheetpipe_llm_breaker_open 0", 5*time.Second)
	for _, id := range jobs {
		waitJobStatus(t, base, id, events.StatusCompleted, 120*time.Second)
	}
	waitJobStatus(t, base, refused, events.StatusWaitingManual, 30*time.Second)
	mu.Lock()
	defer mu.Unlock()
	counted := 0
	for _, id := range jobs {
		for _, ev := range seen[id] {
			switch ev.Status {
			case events.StatusWaitingManual:
				t.Fatalf("job %s was in waiting_manual (%q) because of the outage", id, ev.Message)
			case events.StatusError:
				counted++
			}
		}
	}
	// Only the failures before the breaker opened count a retry: at most
	// LLM_BREAKER_THRESHOLD-1 of them, across all the jobs.
	if counted > cfg.LLMBreakerThreshold-1 {
		t.Fatalf("%d retries counted during the outage, want at most %d", counted, cfg.LLMBreakerThreshold-1)
	}
}

// submitPrompt submits a job with prompt over HTTP and returns its id.
func submitPrompt(t *testing.T, base, prompt string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user_id": "u", "prompt": prompt})
	code, resp := request(t, "POST", base+"/jobs", "", string(body))
	var sub events.SubmitReply
	if code != http.StatusAccepted || json.Unmarshal([]byte(resp), &sub) != nil || sub.JobID == "" {
		t.Fatalf("POST /jobs: %d %s, want 202 with a job id", code, resp)
	}
	return sub.JobID
}

// waitJobStatus polls job id until it has status st.
func waitJobStatus(t *testing.T, base, id string, st events.Status, within time.Duration) {
	t.Helper()
	var j jobView
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if j = getJob(t, base, id); j.Status == st {
			return
		}
	}
	t.Fatalf("job %s not %s within %s: %+v", id, st, within, j)
}
