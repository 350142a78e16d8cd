package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

const topToken = "t0p-secret-token"

// startWithHTTP runs the pipeline with the fake LLM answering as h, the control
// API on NATS and the HTTP API (with topToken) on a test server, and returns
// the NATS server and the HTTP API's URL.
func startWithHTTP(t *testing.T, h fakellm.Handler) (*testnats.Server, string) {
	t.Helper()
	f := testpipeline.New(t, testpipeline.Options{LLM: h})
	control := api.New(f.Plane, api.Config{Token: topToken}, nil)
	if err := control.StartMicro(f.NATS.NC); err != nil {
		t.Fatalf("start control API: %v", err)
	}
	mux := http.NewServeMux()
	control.Register(mux)
	control.RegisterInsight(mux, f.Plane)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = control.Stop() })
	return f.NATS, srv.URL
}

// top shows each stage's queue per priority, the running jobs and the recent
// jobs: a job held at design (the LLM answers after a minute) is in flight and
// running at design/normal, a completed one is counted and listed.
func TestTop(t *testing.T) {
	s, apiURL := startWithHTTP(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": func(req fakellm.Request) fakellm.Reply {
			if strings.Contains(req.LastUser(), "slow") {
				return fakellm.Reply{Content: "outline", Delay: time.Minute}
			}
			return fakellm.Reply{Content: "outline"}
		},
		"latex": fakellm.Script(fakellm.Reply{Content: goodLatex}),
		"meta":  fakellm.Script(fakellm.Reply{Content: "fractions"}),
	}))
	ctx := testContext(t)
	c := newTestClient(t, s)
	done := completedJob(ctx, t, c)
	slow, err := c.Submit(ctx, events.JobRequest{UserID: "bob", Prompt: "a slow worksheet"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Watch(ctx, slow)
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.Status == events.StatusRunning && ev.Step == events.StepDesign {
			break
		}
	}
	base := []string{"--server", s.ClientURL(), "--api", apiURL, "--api-token", topToken}

	r := runSheetctl(ctx, nil, "", t.TempDir(), append(base, "top", "--once")...)
	if r.code != exitOK {
		t.Fatalf("top --once: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`^sheetpipe at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n`,
		`(?m)^jobs 2: running 1, completed 1$`,
		`(?m)^STAGE +PRIORITY +WAITING +IN FLIGHT +RUNNING$`,
		`(?m)^design +normal +0 +1 +1$`,
		`(?m)^compile +high +0 +0 +0$`,
		`(?m)^fix +normal +0 +0 +-$`,
		`(?m)^RECENT JOBS\nJOB ID +STATUS +STEP +RETRIES +UPDATED +USER +PROMPT\n` + slow + ` +running +design .*\n` + done + ` +completed +done `,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("top --once lacks %s:\n%s", want, r.stdout)
		}
	}

	r = runSheetctl(ctx, nil, "", t.TempDir(), append(base, "--json", "top", "--once", "--recent", "1")...)
	var fr topFrame
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &fr) != nil || fr.Stats == nil {
		t.Fatalf("top --json --once: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	inFlight := -1
	for _, q := range fr.Stats.Queues {
		if q.Stage == events.StageDesign && q.Priority == events.PriorityNormal {
			inFlight = q.InFlight
		}
	}
	if fr.Stats.Jobs != 2 || inFlight != 1 || len(fr.Recent) != 1 || fr.Recent[0].JobID != slow || len(fr.Stats.Queues) != len(events.Queues()) {
		t.Fatalf("top --json: %+v", fr)
	}

	// A wrong token: the stats say why (not with the token), the jobs still show.
	r = runSheetctl(ctx, nil, "", t.TempDir(), "--server", s.ClientURL(), "--api", apiURL, "--api-token", "guess", "top", "--once")
	if r.code != exitOK || !strings.Contains(r.stdout, "stats: stats from "+apiURL+"/stats: 401 Unauthorized") ||
		!strings.Contains(r.stdout, "(--api-token, or a context's)") || !strings.Contains(r.stdout, slow) || strings.Contains(r.stdout, "guess") {
		t.Fatalf("top with a wrong token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Live: a frame every interval until interrupted.
	out := &syncBuffer{}
	topCtx, stop := context.WithCancel(ctx)
	code := make(chan int, 1)
	go func() {
		code <- run(topCtx, stdio{in: strings.NewReader(""), out: out, err: out, dir: t.TempDir(), getenv: func(string) string { return "" }},
			append(base, "top", "--interval", "100ms"))
	}()
	waitFor(ctx, t, func() bool { return strings.Count(out.String(), "sheetpipe at ") >= 3 }, "three frames", out)
	stop()
	if c := <-code; c != exitOK || !strings.Contains(out.String(), "(sheetctl top; Ctrl-C to stop)") {
		t.Fatalf("live top: exit %d\n%s", c, out)
	}
}

func TestTopRefusals(t *testing.T) {
	ctx := testContext(t)
	dead := closedURL(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"short interval", []string{"top", "--interval", "10ms"}, exitUsage, "--interval 10ms is shorter than 100ms"},
		{"no recent", []string{"top", "--recent", "0"}, exitUsage, "--recent 0 is outside 1..1000"},
		{"bad api", []string{"--api", "ftp://host", "top"}, exitUsage, `--api "ftp://host" is not an http(s) URL`},
		{"argument", []string{"top", "x"}, exitUsage, "top takes no arguments"},
		{"nothing answers", []string{"--server", dead, "--api", "http://" + strings.TrimPrefix(dead, "nats://"), "top", "--once"}, exitFailure,
			"sheetctl: top: stats from http://" + strings.TrimPrefix(dead, "nats://") + "/stats: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSheetctl(ctx, nil, "", t.TempDir(), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stderr %q, want %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
		})
	}
}
