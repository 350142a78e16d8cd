package service_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testdisk"
)

// diskLatex is what the scripted LLM answers for the latex step.
const diskLatex = `\documentclass{article}
\begin{document}
\section*{Fractions}
$\frac{1}{2} + \frac{1}{4} = \underline{\hspace{2cm}}$
\end{document}
`

type jobView struct {
	Status     events.Status `json:"status"`
	RetryCount int           `json:"retry_count"`
	Message    string        `json:"message"`
}

func getJob(t *testing.T, base, id string) jobView {
	t.Helper()
	code, body := request(t, "GET", base+"/jobs/"+id, "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /jobs/%s: %d %s", id, code, body)
	}
	var j jobView
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		t.Fatalf("job %s: %v: %s", id, err, body)
	}
	return j
}

func submitJob(t *testing.T, base string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 15 * time.Second} // a hang fails the test
	resp, err := client.Post(base+"/jobs", "application/json", strings.NewReader(`{"user_id":"u","prompt":"fractions"}`))
	if err != nil {
		t.Fatalf("POST /jobs: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// submitOK submits a job over HTTP and returns its id.
func submitOK(t *testing.T, base string) string {
	t.Helper()
	code, body := submitJob(t, base)
	var sub events.SubmitReply
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &sub) != nil || sub.JobID == "" {
		t.Fatalf("POST /jobs: %d %s, want 202 with a job id", code, body)
	}
	return sub.JobID
}

// TestFullDisk fills sheetd's data dir (a 64 MiB tmpfs) while two jobs wait in
// the design stage: /readyz turns not ready naming storage, POST /jobs,
// sheetpipe.submit and an abort answer 507 "storage full" without waiting for a
// timeout while GET /jobs/{id} still answers, and
// the two jobs neither burn retries nor reach waiting_manual: their stage
// pauses fetching. Once the filler is deleted, with no restart, /readyz is
// ready, a new submission is accepted, and all three jobs complete.
func TestFullDisk(t *testing.T) {
	dir := testdisk.Mount(t, "64m")
	release := make(chan struct{})
	llm := fakellm.New(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": func(fakellm.Request) fakellm.Reply {
			select {
			case <-release:
			case <-time.After(2 * time.Minute):
			}
			return fakellm.Reply{Content: "A worksheet of fraction sums."}
		},
		"latex":         fakellm.Script(fakellm.Reply{Content: diskLatex}),
		fakellm.AnyStep: fakellm.Script(fakellm.Reply{Content: `{"description":"Fractions","tags":["fractions"]}`}),
	}))
	cfg := baseConfig(t)
	cfg.DataDir = dir
	cfg.LLMProvider, cfg.OpenAIKey, cfg.OpenAIBaseURL = "openai", "test", llm.URL
	cfg.LeaseTTL = 3 * time.Second
	startService(t, cfg)
	base := "http://" + cfg.HTTPAddr

	inFlight := []string{submitOK(t, base), submitOK(t, base)}
	for deadline := time.Now().Add(30 * time.Second); llm.CallsFor("design") < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the jobs did not reach the design stage within 30s")
		}
	}

	filler := filepath.Join(dir, "filler")
	testdisk.Fill(t, filler)
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "storage full", 10*time.Second)

	code, body := submitJob(t, base)
	if code != http.StatusInsufficientStorage || !strings.HasPrefix(body, `{"error":"storage full: `) {
		t.Fatalf("POST /jobs on a full disk: %d %s, want 507 {\"error\": \"storage full: ...\"}", code, body)
	}
	nc, err := nats.Connect("nats://" + cfg.NATSListen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, err := nc.Request(events.ControlSubject(events.OpSubmit), []byte(`{"user_id":"u","prompt":"fractions"}`), 15*time.Second)
	if err != nil {
		t.Fatalf("sheetpipe.submit on a full disk: %v", err)
	}
	if c := msg.Header.Get(micro.ErrorCodeHeader); c != "507" || !strings.Contains(string(msg.Data), "storage full: ") {
		t.Fatalf("sheetpipe.submit on a full disk: code %q %s, want 507 storage full", c, msg.Data)
	}

	// A control operation that writes is refused the same way; reads go on.
	if code, body := request(t, "POST", base+"/jobs/"+inFlight[0]+"/abort", "", ""); code != http.StatusInsufficientStorage || !strings.Contains(body, "storage full: ") {
		t.Fatalf("abort on a full disk: %d %s, want 507 storage full", code, body)
	}

	// The design answers now arrive; recording them is refused: the stage
	// pauses instead of failing the jobs.
	close(release)
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "stage design paused fetching: storage full", 20*time.Second)
	for _, id := range inFlight {
		if j := getJob(t, base, id); j.RetryCount != 0 || j.Status == events.StatusError || j.Status == events.StatusWaitingManual {
			t.Fatalf("job %s on a full disk: %+v, want its retries untouched", id, j)
		}
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/readyz", http.StatusOK, "ready", 30*time.Second)
	jobs := append(inFlight, submitOK(t, base))
	for _, id := range jobs {
		var j jobView
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if j = getJob(t, base, id); j.Status == events.StatusCompleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s not completed within 90s of the space coming back: %+v", id, j)
			}
		}
		if j.RetryCount != 0 {
			t.Fatalf("job %s completed with %d retries spent on the full disk", id, j.RetryCount)
		}
	}
}

// TestStartsOnSmallDisk runs sheetd on a 256 MiB data dir, far less than the
// 1 GiB PDF cache it asks for on a large disk: it starts, and a job completes.
func TestStartsOnSmallDisk(t *testing.T) {
	cfg := baseConfig(t)
	cfg.DataDir = testdisk.Mount(t, "256m")
	startService(t, cfg)
	base := "http://" + cfg.HTTPAddr
	id := submitOK(t, base)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		j := getJob(t, base, id)
		if j.Status == events.StatusCompleted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not completed within 60s: %+v", j)
		}
	}
}
