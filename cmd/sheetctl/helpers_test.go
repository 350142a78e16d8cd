package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// testTimeout bounds every test's waits.
const testTimeout = 2 * time.Minute

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startPipeline starts a test server running the whole pipeline.
func startPipeline(t *testing.T) *testnats.Server { return testpipeline.Start(t) }

const (
	goodLatex   = "\\documentclass{article}\n\\begin{document}\nA worksheet edited by hand.\n\\end{document}\n"
	brokenLatex = "\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n\\end{document}\n"
)

func newTestClient(t *testing.T, s *testnats.Server) *client.Client {
	t.Helper()
	c, err := client.New(s.NC)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// completedJob submits a job for ada through the client and waits until it
// completes.
func completedJob(ctx context.Context, t *testing.T, c *client.Client) string {
	t.Helper()
	id, err := c.Submit(ctx, events.JobRequest{UserID: "ada", Prompt: prompt})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if last := waitRun(ctx, t, c, id, 0); last.Status != events.StatusCompleted {
		t.Fatalf("job %s ended %s, want completed", id, last.Status)
	}
	return id
}

// waitingManualJob is a completed job whose LaTeX was then replaced by LaTeX
// that does not compile (line 3), so it waits for the user.
func waitingManualJob(ctx context.Context, t *testing.T, c *client.Client) string {
	t.Helper()
	id := completedJob(ctx, t, c)
	j, err := c.EditLatex(ctx, id, brokenLatex)
	if err != nil {
		t.Fatalf("edit: %v", err)
	}
	if last := waitRun(ctx, t, c, id, j.Revision); last.Status != events.StatusWaitingManual {
		t.Fatalf("job %s ended %s after a broken edit, want waiting_manual", id, last.Status)
	}
	return id
}

// waitRun waits for the run of job id from revision rev to end and returns its
// last event.
func waitRun(ctx context.Context, t *testing.T, c *client.Client, id string, rev uint64) events.StatusEvent {
	t.Helper()
	ch, err := c.WatchFrom(ctx, id, rev)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	var last events.StatusEvent
	for ev := range ch {
		last = ev
	}
	if !last.Final() {
		t.Fatalf("watch of job %s ended at %+v (ctx err %v)", id, last, ctx.Err())
	}
	return last
}

// closedURL is a nats:// URL on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return "nats://" + addr
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is what one in-process run of sheetctl produced.
type result struct {
	code           int
	stdout, stderr string
}

// runSheetctl runs sheetctl in process with env (NATS_URL, USER...) and stdin,
// writing PDFs to dir.
func runSheetctl(ctx context.Context, env map[string]string, stdin, dir string, args ...string) result {
	var out, errOut syncBuffer
	sio := stdio{
		in:     strings.NewReader(stdin),
		out:    &out,
		err:    &errOut,
		dir:    dir,
		getenv: func(k string) string { return env[k] },
	}
	code := run(ctx, sio, args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}
