package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// memoryResult is the resident memory of a sheetd process (with its embedded
// NATS server) idle and with Jobs jobs queued at design.
type memoryResult struct {
	Jobs        int
	IdleKiB     int64 // VmRSS once ready
	QueuedKiB   int64 // VmRSS once every job was created
	PeakKiB     int64 // VmHWM then
	SubmitTaken time.Duration
}

// runMemory starts the built sheetd on a temp data dir with only the prompt
// stage, so submitted jobs are created and stay queued for design, and reads
// its RSS from /proc.
func runMemory(ctx context.Context, bin string, jobs int) (*memoryResult, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("sheetd binary: %w (make bench builds it into bin/)", err)
	}
	dir, err := os.MkdirTemp("", "sheetbench-sheetd-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	natsAddr, httpAddr := freeAddr(), freeAddr()
	if natsAddr == "" || httpAddr == "" {
		return nil, errors.New("no free loopback port")
	}
	p, err := startSheetd(bin, dir, natsAddr, httpAddr)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if err := p.waitReady(ctx, "http://"+httpAddr+"/readyz"); err != nil {
		return nil, fmt.Errorf("%w\nsheetd stderr:\n%s", err, p.stderr.String())
	}
	r := &memoryResult{Jobs: jobs}
	if r.IdleKiB, _, err = rss(p.cmd.Process.Pid); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := queueJobs(ctx, "nats://"+natsAddr, jobs); err != nil {
		return nil, err
	}
	r.SubmitTaken = time.Since(start)
	if r.QueuedKiB, r.PeakKiB, err = rss(p.cmd.Process.Pid); err != nil {
		return nil, err
	}
	return r, nil
}

// queueJobs submits n jobs and waits until sheetd announced each one created.
func queueJobs(ctx context.Context, url string, n int) error {
	nc, err := nats.Connect(url, nats.Name("sheetbench-memory"))
	if err != nil {
		return fmt.Errorf("connect sheetd's nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		return err
	}
	ids := newIDs(n)
	var mu sync.Mutex
	created := make(map[string]bool, n)
	all := make(chan struct{})
	sub, err := nc.Subscribe(events.SubjectStatus, func(m *nats.Msg) {
		var ev events.StatusEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.Status != events.StatusPending || ev.Step != events.StepDesign {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !created[ev.JobID] {
			created[ev.JobID] = true
			if len(created) == n {
				close(all)
			}
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	s := &submitter{js: js, prompt: distinctPrompts}
	for i, id := range ids {
		if err := s.send(id, i, time.Now()); err != nil {
			return err
		}
	}
	if err := s.confirmed(ctx); err != nil {
		return err
	}
	timeout := runTimeout(n, 20)
	select {
	case <-all:
		return nil
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	return fmt.Errorf("sheetd created %d of %d jobs within %s", len(created), n, timeout)
}

// rss reads VmRSS and VmHWM (KiB) of pid.
func rss(pid int) (cur, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			cur, err = strconv.ParseInt(fields[1], 10, 64)
		case "VmHWM:":
			peak, err = strconv.ParseInt(fields[1], 10, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s: %w", fields[0], err)
		}
	}
	if cur == 0 {
		return 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return cur, peak, sc.Err()
}

// sheetd is a running sheetd process.
type sheetd struct {
	cmd    *exec.Cmd
	stderr *lockedWriter
	exited chan struct{} // closed once the process ended
}

// startSheetd starts bin with its embedded NATS server on addresses of its own,
// data in dir and only the prompt stage running.
func startSheetd(bin, dir, natsAddr, httpAddr string) (*sheetd, error) {
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SHEETPIPE_DATA_DIR=" + dir + "/data",
		"SHEETPIPE_NATS_LISTEN=" + natsAddr, "SHEETPIPE_HTTP_ADDR=" + httpAddr,
		"SHEETPIPE_STAGES=prompt", "SHEETPIPE_LOG_LEVEL=warn"}
	p := &sheetd{cmd: cmd, stderr: &lockedWriter{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sheetd: %w", err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// waitReady polls url until it answers 200, the process exits, or a minute
// passes.
func (p *sheetd) waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return errors.New("sheetd exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("sheetd not ready at %s within a minute", url)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits up to 30s, then kills.
func (p *sheetd) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// freeAddr returns a loopback address with a port free a moment ago, or "".
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedWriter lets the process write while the harness may read.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
