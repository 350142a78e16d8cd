package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/service"
)

const goodLatex = `\documentclass{article}
\begin{document}
\section*{Fractions}
$\frac{1}{2} + \frac{1}{4} = \underline{\hspace{2cm}}$
\end{document}
`

// brokenLatex has an undefined control sequence on line 4.
const brokenLatex = `\documentclass{article}
\begin{document}
\section*{Fractions}
\notacommand{1/2}
\end{document}
`

// llmHandler scripts the model by markers in the prompt, which the design
// carries on to the latex step: BROKEN answers LaTeX that does not compile, SLOW
// keeps the latex call open for two minutes (cut short when the job is aborted).
// Each design takes a moment, so a page opened right after the submit sees the
// steps happen.
func llmHandler(req fakellm.Request) fakellm.Reply {
	last := req.LastUser()
	switch req.Step {
	case "design":
		return fakellm.Reply{Content: "Design for: " + last, Delay: 700 * time.Millisecond, PromptTokens: 11, CompletionTokens: 22}
	case "latex":
		switch {
		case strings.Contains(last, "SLOW"):
			return fakellm.Reply{Content: goodLatex, Delay: 2 * time.Minute}
		case strings.Contains(last, "BROKEN"):
			return fakellm.Reply{Content: brokenLatex}
		}
		return fakellm.Reply{Content: goodLatex, Delay: 300 * time.Millisecond}
	case "refine":
		return fakellm.Reply{Content: "Revised request: " + last}
	case "meta":
		if strings.HasPrefix(last, "Describe the worksheet") {
			return fakellm.Reply{Content: "A worksheet."}
		}
		return fakellm.Reply{Content: "math, fractions"}
	}
	return fakellm.Reply{Status: http.StatusBadRequest, Content: "no script for step " + req.Step}
}

// sheetd is a real sheetd (service.Run: embedded NATS, every stage, pdflatex) with
// the scripted fake LLM, serving the console.
type sheetd struct {
	t     *testing.T
	base  string
	token string
}

func startSheetd(t *testing.T, token string) *sheetd {
	t.Helper()
	llm := fakellm.New(t, llmHandler)
	cfg := service.Config{
		DataDir: t.TempDir(), NATSListen: testnats.FreeAddr(t), HTTPAddr: testnats.FreeAddr(t), Stages: "all",
		Replicas: 1, MaxRetries: 3, RetryBase: 50 * time.Millisecond, EventsMaxAge: time.Hour,
		AckWait: 30 * time.Second, LeaseTTL: 30 * time.Second, ShutdownTimeout: 10 * time.Second, SweepInterval: 10 * time.Second,
		LogLevel: "error", LogFormat: "json", LLMProvider: "openai", OpenAIKey: "test", OpenAIBaseURL: llm.URL,
		LLMModel: "gpt-4o-mini", LLMTimeout: 3 * time.Minute, CompileTimeout: 30 * time.Second, CompileCommand: "pdflatex",
		APIToken: token,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	s := &sheetd{t: t, base: "http://" + cfg.HTTPAddr, token: token}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-done:
			t.Fatalf("sheetd stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("sheetd not ready within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// api calls the HTTP API with the token and decodes the JSON reply into out.
func (s *sheetd) api(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && json.Unmarshal(data, out) != nil {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

func (s *sheetd) submit(req map[string]any) string {
	s.t.Helper()
	var reply struct {
		JobID string `json:"job_id"`
	}
	if code := s.api("POST", "/jobs", req, &reply); code != http.StatusAccepted {
		s.t.Fatalf("submit: %d", code)
	}
	return reply.JobID
}

// browser starts headless Chromium with a fresh profile and returns a tab's
// context, cancelled when the test ends. Without Chromium the test is skipped,
// unless SHEETPIPE_REQUIRE_BROWSER=1 (make test sets it) makes it fail.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("SHEETPIPE_REQUIRE_BROWSER") == "1" {
			t.Fatal("no chromium on PATH (make test installs Debian's)")
		}
		t.Skip("no chromium on PATH; make test installs it")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	if err := chromedp.Do(tab); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	// The page's console and uncaught exceptions, shown when the test fails.
	var mu sync.Mutex
	var logs []string
	msgs := chromedp.Console(tab)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			mu.Lock()
			logs = append(logs, m.String())
			mu.Unlock()
		}
	}()
	ctx, cancelTime := context.WithTimeout(tab, 4*time.Minute)
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("browser console:\n%s", strings.Join(logs, "\n"))
			mu.Unlock()
		}
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// do runs the browser actions within wait.
func do(t *testing.T, ctx context.Context, wait time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// value runs one browser action that returns a value, within 30s.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return value(t, ctx, chromedp.TextContent(chromedp.CSS(sel)))
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return value(t, ctx, chromedp.Evaluate[T](js))
}

// visible waits up to wait for sel to be visible.
func visible(t *testing.T, ctx context.Context, wait time.Duration, sel string) {
	t.Helper()
	do(t, ctx, wait, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// screenshot saves the page as docs/<name>.png when SHEETPIPE_SCREENSHOTS=1
// (make screenshots sets it).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("SHEETPIPE_SCREENSHOTS") != "1" {
		return
	}
	png := value(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile("../docs/"+name+".png", png, 0o644); err != nil {
		t.Fatal(err)
	}
}
