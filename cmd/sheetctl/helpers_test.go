package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

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
