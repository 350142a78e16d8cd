package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// These tests run the built sheetd binary as an operator would: a real process
// with its embedded NATS server, configured only through its environment, stopped
// with SIGTERM and restarted on the same data directory.

const testLatex = `\documentclass{article}
\usepackage{amsmath}
\begin{document}
\section*{Fractions}
\begin{enumerate}
\item $\frac{1}{2} + \frac{1}{4} = \underline{\hspace{2cm}}$
\item $\frac{2}{3} - \frac{1}{6} = \underline{\hspace{2cm}}$
\end{enumerate}
\end{document}
`

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// sheetdBinary builds sheetd once per test binary and returns its path.
func sheetdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "sheetd-test-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "sheetd")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", buildBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// lockedBuffer is an io.Writer the test may read while the process writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// setup is one sheetd deployment: a data directory, two ports and an LLM server,
// shared by every process a test starts on it.
type setup struct {
	t        *testing.T
	llm      *fakellm.Server
	dataDir  string
	natsAddr string
	httpAddr string
	extraEnv []string
}

func newSetup(t *testing.T, h fakellm.Handler, extraEnv ...string) *setup {
	t.Helper()
	return &setup{t: t, llm: fakellm.New(t, h), dataDir: t.TempDir(),
		natsAddr: testnats.FreeAddr(t), httpAddr: testnats.FreeAddr(t), extraEnv: extraEnv}
}

func (s *setup) env() []string {
	return append([]string{
		"SHEETPIPE_DATA_DIR=" + s.dataDir,
		"SHEETPIPE_NATS_LISTEN=" + s.natsAddr,
		"SHEETPIPE_HTTP_ADDR=" + s.httpAddr,
		"OPENAI_BASE_URL=" + s.llm.URL,
		"OPENAI_API_KEY=test",
		"SHEETPIPE_RETRY_BASE=50ms",
	}, s.extraEnv...)
}

// process is one running sheetd.
type process struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
}

// start runs sheetd with only PATH, HOME and env in its environment. The process
// is killed (with anything it started) when the test ends.
func start(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	return startCommand(t, name, sheetdBinary(t), env, args...)
}

// startCommand runs bin in its own process group and working directory, with
// only PATH, HOME and env in its environment, capturing its output (logged if
// the test fails); it is killed, with anything it started, when the test ends.
func startCommand(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	cmd.Dir = t.TempDir()
	p := &process{t: t, name: name, cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s (pid %d) still running 10s after SIGKILL", name, cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.stdout.String(), name, p.stderr.String())
		}
	})
	return p
}

func (s *setup) start(name string) *process {
	s.t.Helper()
	p := start(s.t, name, s.env())
	p.waitReady("http://" + s.httpAddr + "/readyz")
	return p
}

// exited reports whether the process has ended and, if so, its exit code.
func (p *process) exited() (int, bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	default:
		return 0, false
	}
}

// wait waits up to d for the process to end and returns its exit code.
func (p *process) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.t.Fatalf("%s did not exit within %s\n%s", p.name, d, p.stderr.String())
		return 0
	}
}

func (p *process) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
}

func (p *process) waitReady(url string) {
	p.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if code, ok := p.exited(); ok {
			p.t.Fatalf("%s exited with code %d before it was ready\n%s", p.name, code, p.stderr.String())
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready within 60s\n%s", p.name, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logLine is one JSON log record of sheetd.
type logLine struct {
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
}

// logs parses the process's output as JSON lines; a line that is not JSON fails
// the test.
func (p *process) logs() []logLine {
	p.t.Helper()
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			p.t.Errorf("%s wrote a line that is not JSON: %q", p.name, sc.Text())
			continue
		}
		out = append(out, l)
	}
	return out
}

// assertCleanStop checks the log of a process stopped by SIGTERM: a "shutting
// down" line, then "stopped" as the last line, both at INFO.
func (p *process) assertCleanStop() []logLine {
	p.t.Helper()
	lines := p.logs()
	shutting := -1
	for i, l := range lines {
		if l.Msg == "shutting down" {
			shutting = i
			if l.Level != "INFO" {
				p.t.Errorf("%s: \"shutting down\" logged at %s, want INFO", p.name, l.Level)
			}
		}
	}
	if shutting < 0 {
		p.t.Errorf("%s: no \"shutting down\" log line\n%s", p.name, p.stderr.String())
	}
	if len(lines) == 0 || lines[len(lines)-1].Msg != "stopped" || lines[len(lines)-1].Level != "INFO" {
		p.t.Errorf("%s: last log line is not {level INFO, msg stopped}\n%s", p.name, p.stderr.String())
	}
	return lines
}

func hasLog(lines []logLine, level, msg string) bool {
	for _, l := range lines {
		if l.Level == level && l.Msg == msg {
			return true
		}
	}
	return false
}

// client is the test's own NATS connection to a running sheetd.
type client struct {
	t   *testing.T
	ctx context.Context
	nc  *nats.Conn
	js  jetstream.JetStream
}

func (s *setup) connect(ctx context.Context) *client {
	s.t.Helper()
	nc, err := nats.Connect("nats://"+s.natsAddr, nats.MaxReconnects(0), nats.Timeout(5*time.Second))
	if err != nil {
		s.t.Fatalf("connect to embedded nats: %v", err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return &client{t: s.t, ctx: ctx, nc: nc, js: js}
}

func (c *client) submit(prompt string) string {
	c.t.Helper()
	id := uuid.NewString()
	data, err := json.Marshal(events.JobRequest{JobID: id, UserID: "teacher", Prompt: prompt})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.js.Publish(c.ctx, events.SubjectPrompt, data, jetstream.WithMsgID(id)); err != nil {
		c.t.Fatalf("publish request: %v", err)
	}
	return id
}

// waitCompleted waits for the job's KV value to reach a final status and requires
// it to be completed.
func (c *client) waitCompleted(id string, p *process) *events.Job {
	c.t.Helper()
	kv, err := c.js.KeyValue(c.ctx, kvstore.BucketJobs)
	if err != nil {
		c.t.Fatal(err)
	}
	var job events.Job
	for deadline := time.Now().Add(90 * time.Second); ; {
		if e, err := kv.Get(c.ctx, id); err == nil {
			if err := json.Unmarshal(e.Value(), &job); err != nil {
				c.t.Fatalf("job %s is not JSON: %v", id, err)
			}
			if events.FinishedStatus(job.Status) {
				break
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s not final within 90s: %s/%s %s\n%s", id, job.Status, job.CurrentStep, job.Message, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if job.Status != events.StatusCompleted {
		c.t.Fatalf("job %s ended %s (%s): %s", id, job.Status, job.ErrorMessage, job.Message)
	}
	return &job
}

func (c *client) pdf(id string) []byte {
	c.t.Helper()
	obs, err := c.js.ObjectStore(c.ctx, broker.BucketPDFs)
	if err != nil {
		c.t.Fatal(err)
	}
	b, err := obs.GetBytes(c.ctx, id+".pdf")
	if err != nil {
		c.t.Fatalf("get %s.pdf: %v", id, err)
	}
	return b
}

// statusEvents reads every status event of job id stored in JOB_EVENTS.
func (c *client) statusEvents(id string) []events.StatusEvent {
	c.t.Helper()
	stream, err := c.js.Stream(c.ctx, events.StreamEvents)
	if err != nil {
		c.t.Fatal(err)
	}
	info, err := stream.Info(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []events.StatusEvent
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := stream.GetMsg(c.ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		} else if err != nil {
			c.t.Fatalf("get event %d: %v", seq, err)
		}
		if m.Subject != events.SubjectStatus {
			continue
		}
		var ev events.StatusEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			c.t.Fatalf("event %d is not a status event: %v: %s", seq, err, m.Data)
		}
		if ev.JobID == id {
			out = append(out, ev)
		}
	}
	return out
}

// completedEvents waits for the job's completed event to be stored, gives the
// service a moment to (wrongly) publish more, and returns every event of the job
// and how many say completed.
func (c *client) completedEvents(id string) ([]events.StatusEvent, int) {
	c.t.Helper()
	count := func(evs []events.StatusEvent) int {
		n := 0
		for _, ev := range evs {
			if ev.Status == events.StatusCompleted {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(c.statusEvents(id)) == 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("no completed event for job %s within 10s of the job completing: %s", id, describe(c.statusEvents(id)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	evs := c.statusEvents(id)
	return evs, count(evs)
}

func describe(evs []events.StatusEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %s/%s: %s", ev.Time.Format(time.RFC3339Nano), ev.Status, ev.Step, ev.Message)
	}
	return b.String()
}

// waitCalls waits until the LLM server has received n calls for step.
func waitCalls(t *testing.T, llm *fakellm.Server, step string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for llm.CallsFor(step) < n {
		if time.Now().After(deadline) {
			t.Fatalf("LLM server received %d %s calls within %s, want %d", llm.CallsFor(step), step, d, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

const testPrompt = "A fractions worksheet for grade 5: adding and subtracting"

// TestSIGTERMFinishesInFlightWork stops sheetd while a design call is in flight,
// well inside the shutdown timeout: the call finishes, its answer is kept, the
// process exits 0, and a restarted sheetd completes the job without asking for the
// design again.
func TestSIGTERMFinishesInFlightWork(t *testing.T) {
	ctx := testContext(t)
	const design = "Section 1: add fractions with unlike denominators, 2 exercises."
	s := newSetup(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: design, Delay: 2 * time.Second}),
		"latex":  fakellm.Script(fakellm.Reply{Content: testLatex}),
	}))

	first := s.start("first sheetd")
	c := s.connect(ctx)
	id := c.submit(testPrompt)
	c.nc.Close()
	waitCalls(t, s.llm, "design", 1, 30*time.Second)

	first.signal(syscall.SIGTERM)
	if code := first.wait(30 * time.Second); code != 0 {
		t.Fatalf("first sheetd exited %d after SIGTERM, want 0\n%s", code, first.stderr.String())
	}
	stoppedAt := time.Now()
	lines := first.assertCleanStop()
	if hasLog(lines, "WARN", "shutdown deadline: cancelling in-flight work") {
		t.Errorf("in-flight work was cancelled although it ends well inside the shutdown timeout\n%s", first.stderr.String())
	}

	second := s.start("second sheetd")
	c = s.connect(ctx)
	job := c.waitCompleted(id, second)
	if pdf := c.pdf(id); !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("%s.pdf starts %q, want %%PDF", id, pdf[:min(len(pdf), 8)])
	}
	if !strings.Contains(job.Design, "unlike denominators") {
		t.Errorf("job design %q is not the LLM's answer %q", job.Design, design)
	}
	if n := s.llm.CallsFor("design"); n != 1 {
		t.Errorf("LLM received %d design calls, want 1: the answer finished before SIGTERM must be kept", n)
	}
	evs, completed := c.completedEvents(id)
	if completed != 1 {
		t.Errorf("%d completed events for job %s, want 1: %s", completed, id, describe(evs))
	}
	designReady := false
	for _, ev := range evs {
		if ev.Status == events.StatusPending && ev.Step == events.StepLatex && ev.Time.Before(stoppedAt) {
			designReady = true
		}
	}
	if !designReady {
		t.Errorf("no pending/latex event before the first sheetd stopped: the in-flight design was not finished by it: %s", describe(evs))
	}

	second.signal(syscall.SIGTERM)
	if code := second.wait(30 * time.Second); code != 0 {
		t.Errorf("second sheetd exited %d after SIGTERM, want 0", code)
	}
}

// TestSIGTERMHandsBackWorkPastTheDeadline stops sheetd while a design call that
// outlasts SHEETPIPE_SHUTDOWN_TIMEOUT is in flight: the call is cancelled, the job
// handed back, the process exits 0 quickly, and a restarted sheetd designs again
// and completes the job.
func TestSIGTERMHandsBackWorkPastTheDeadline(t *testing.T) {
	ctx := testContext(t)
	const (
		lateDesign  = "Late outline: multiply fractions, never used."
		finalDesign = "Final outline: add fractions with unlike denominators."
	)
	s := newSetup(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(
			fakellm.Reply{Content: lateDesign, Delay: 20 * time.Second},
			fakellm.Reply{Content: finalDesign},
		),
		"latex": fakellm.Script(fakellm.Reply{Content: testLatex}),
	}), "SHEETPIPE_SHUTDOWN_TIMEOUT=1s")

	first := s.start("first sheetd")
	c := s.connect(ctx)
	id := c.submit(testPrompt)
	c.nc.Close()
	waitCalls(t, s.llm, "design", 1, 30*time.Second)

	first.signal(syscall.SIGTERM)
	signalled := time.Now()
	if code := first.wait(10 * time.Second); code != 0 {
		t.Fatalf("first sheetd exited %d after SIGTERM, want 0\n%s", code, first.stderr.String())
	}
	t.Logf("first sheetd exited %s after SIGTERM", time.Since(signalled).Round(time.Millisecond))
	lines := first.assertCleanStop()
	if !hasLog(lines, "WARN", "shutdown deadline: cancelling in-flight work") {
		t.Errorf("no warning that in-flight work was cancelled at the shutdown deadline\n%s", first.stderr.String())
	}

	second := s.start("second sheetd")
	restarted := time.Now()
	c = s.connect(ctx)
	job := c.waitCompleted(id, second)
	t.Logf("job completed %s after the restart", time.Since(restarted).Round(time.Millisecond))
	if pdf := c.pdf(id); !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("%s.pdf starts %q, want %%PDF", id, pdf[:min(len(pdf), 8)])
	}
	if n := s.llm.CallsFor("design"); n != 2 {
		t.Errorf("LLM received %d design calls, want 2 (the cancelled one and the redo)", n)
	}
	if strings.Contains(job.Design, "never used") || !strings.Contains(job.Design, "unlike denominators") {
		t.Errorf("job design %q, want the redone design %q (the cancelled answer discarded)", job.Design, finalDesign)
	}
	evs, completed := c.completedEvents(id)
	if completed != 1 {
		t.Errorf("%d completed events for job %s, want 1: %s", completed, id, describe(evs))
	}

	second.signal(syscall.SIGTERM)
	if code := second.wait(30 * time.Second); code != 0 {
		t.Errorf("second sheetd exited %d after SIGTERM, want 0", code)
	}
}

func TestBadConfigExitsNonZero(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		output   func(p *process) string
		want     []string
	}{
		{"replicas not a number", []string{"SHEETPIPE_REPLICAS=banana"}, nil, 1,
			func(p *process) string { return p.stderr.String() }, []string{"SHEETPIPE_REPLICAS"}},
		{"negative retention", []string{"SHEETPIPE_RETENTION=-30d"}, nil, 1,
			func(p *process) string { return p.stderr.String() }, []string{`$SHEETPIPE_RETENTION="-30d" is not`}},
		{"help", nil, []string{"-h"}, 0,
			func(p *process) string { return p.stdout.String() + p.stderr.String() }, []string{"-nats-url", "$SHEETPIPE_CONCURRENCY", "-retention duration", "$SHEETPIPE_RETENTION) (default 30d)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{
				"SHEETPIPE_DATA_DIR=" + t.TempDir(),
				"SHEETPIPE_NATS_LISTEN=" + testnats.FreeAddr(t),
				"SHEETPIPE_HTTP_ADDR=" + testnats.FreeAddr(t),
			}, tc.env...)
			p := start(t, "sheetd", env, tc.args...)
			if code := p.wait(10 * time.Second); code != tc.wantCode {
				t.Fatalf("exit code %d, want %d", code, tc.wantCode)
			}
			out := tc.output(p)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
