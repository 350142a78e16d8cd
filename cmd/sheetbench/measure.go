package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// load is one batch of jobs sent to a running pipeline: closed-loop with window
// jobs in flight, or open-loop at rate jobs/s.
type load struct {
	jobs    int
	prompt  func(i int) string
	window  int
	rate    float64
	timeout time.Duration
}

// measured is one load's traces and the server's counters over it.
type measured struct {
	traces []*trace
	perJob perJob
}

// measure sends l to the pipeline over a client connection of its own and waits
// until every job completed.
func measure(ctx context.Context, srv *benchServer, l load) (measured, error) {
	nc, err := srv.connect("sheetbench-client")
	if err != nil {
		return measured{}, fmt.Errorf("client connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		return measured{}, fmt.Errorf("jetstream: %w", err)
	}
	ids := newIDs(l.jobs)
	slots := make(chan struct{}, max(l.window, 1))
	release := func() {
		select {
		case <-slots:
		default:
		}
	}
	tr, err := track(nc, ids, release)
	if err != nil {
		return measured{}, err
	}
	before, err := srv.counters()
	if err != nil {
		return measured{}, err
	}
	s := &submitter{js: js, tr: tr, prompt: l.prompt}
	if l.rate > 0 {
		err = offer(ctx, s, ids, l.rate)
	} else {
		err = saturate(ctx, s, ids, slots)
	}
	if err != nil {
		return measured{}, err
	}
	if err := tr.wait(ctx, l.timeout); err != nil {
		return measured{}, err
	}
	after, err := srv.counters()
	if err != nil {
		return measured{}, err
	}
	return measured{traces: tr.all(), perJob: after.since(before, l.jobs)}, nil
}

// runTimeout bounds a load of n jobs expected at no less than minRate jobs/s.
func runTimeout(n int, minRate float64) time.Duration {
	return time.Minute + time.Duration(float64(n)/minRate*float64(time.Second))
}

// distinctPrompts gives every job its own request (and so its own LaTeX).
func distinctPrompts(i int) string { return fmt.Sprintf("%s (sheet %d)", typicalPrompt, i) }

// hop is one queue hop's latency distribution.
type hop struct {
	Name string
	Dist dist
}

// queueSteps are the stages whose queue hop (pending event to running event:
// ticket publish, delivery and claim) the targets judge.
var queueSteps = []events.Step{events.StepDesign, events.StepLatex, events.StepCompile}

// hops returns the request hop (request due to job created, the prompt stage's
// whole work) and each queue hop.
func hops(traces []*trace) []hop {
	req := make([]time.Duration, 0, len(traces))
	for _, tr := range traces {
		req = append(req, tr.pending[events.StepDesign].Sub(tr.enqueued))
	}
	out := []hop{{Name: "request → created", Dist: distOf(req)}}
	for _, st := range queueSteps {
		ds := make([]time.Duration, 0, len(traces))
		for _, tr := range traces {
			ds = append(ds, tr.running[st].Sub(tr.pending[st]))
		}
		out = append(out, hop{Name: string(st) + " queue", Dist: distOf(ds)})
	}
	return out
}
