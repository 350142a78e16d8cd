package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// baselineClients is the number of concurrent natscli clients of each run.
const baselineClients = 16

// Names of the stream and bucket natscli runs on; created before and deleted
// after each run.
const (
	baselineStream  = "SHEETBENCH_BASELINE"
	baselineSubject = "sheetbench.baseline"
	baselineBucket  = "sheetbench_baseline"
)

// baselineResult is what natscli measures against the bench server.
type baselineResult struct {
	Version string  // natscli's --version
	Msgs    int     // messages of each run
	PubSync float64 // js pub sync, msgs/s: the JetStream ops budget
	KVPut   float64 // kv put, msgs/s
}

// errNoNATSCLI means the natscli binary is missing (a quick run skips the
// baseline then).
var errNoNATSCLI = errors.New("natscli not found")

func runBaseline(ctx context.Context, srv *benchServer, bin string, msgs int) (*baselineResult, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w at %s (make bench installs it into bin/): %w", errNoNATSCLI, bin, err)
	}
	version, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("natscli --version: %w", err)
	}
	nc, err := nats.Connect(srv.URL(), nats.Name("sheetbench-baseline"))
	if err != nil {
		return nil, fmt.Errorf("baseline connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	r := &baselineResult{Version: strings.TrimSpace(string(version)), Msgs: msgs}
	count := strconv.Itoa(msgs)
	clients := strconv.Itoa(baselineClients)
	r.PubSync, err = onStream(ctx, js, func(ctx context.Context) (float64, error) {
		return natsBench(ctx, bin, srv.URL(), "js", "pub", "sync", baselineSubject, "--stream", baselineStream,
			"--clients", clients, "--msgs", count, "--no-progress")
	})
	if err != nil {
		return nil, fmt.Errorf("nats bench js pub sync: %w", err)
	}
	r.KVPut, err = onBucket(ctx, js, func(ctx context.Context) (float64, error) {
		return natsBench(ctx, bin, srv.URL(), "kv", "put", "--bucket", baselineBucket,
			"--clients", clients, "--msgs", count, "--no-progress")
	})
	if err != nil {
		return nil, fmt.Errorf("nats bench kv put: %w", err)
	}
	return r, nil
}

// onStream runs fn on a fresh file stream of baselineSubject, deleted after.
func onStream(ctx context.Context, js jetstream.JetStream, fn func(context.Context) (float64, error)) (float64, error) {
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: baselineStream, Subjects: []string{baselineSubject},
		Storage: jetstream.FileStorage}); err != nil {
		return 0, fmt.Errorf("create stream %s: %w", baselineStream, err)
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), baselineStream)
	return fn(ctx)
}

// onBucket runs fn on a fresh file bucket (history 1, like sheetpipe's), deleted
// after.
func onBucket(ctx context.Context, js jetstream.JetStream, fn func(context.Context) (float64, error)) (float64, error) {
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: baselineBucket, History: 1,
		Storage: jetstream.FileStorage}); err != nil {
		return 0, fmt.Errorf("create bucket %s: %w", baselineBucket, err)
	}
	defer js.DeleteKeyValue(context.WithoutCancel(ctx), baselineBucket)
	return fn(ctx)
}

// natsBench runs `nats -s url bench args...` and returns its aggregated msgs/s.
func natsBench(ctx context.Context, bin, url string, args ...string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-s", url, "--no-context", "bench"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w\n%s", err, tail(string(out), 2000))
	}
	return parseAggregate(string(out))
}

var aggregateRe = regexp.MustCompile(`aggregated stats: ([0-9,.]+) msgs/sec`)

// parseAggregate finds "... aggregated stats: 42,571 msgs/sec ..." in natscli's
// output.
func parseAggregate(out string) (float64, error) {
	m := aggregateRe.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no \"aggregated stats: N msgs/sec\" in natscli output:\n%s", tail(out, 2000))
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("natscli rate %q: not a positive number", m[1])
	}
	return v, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
