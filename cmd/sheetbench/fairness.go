package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// The fairness scenario: a flood user submits fairFlood jobs, then fairLight
// light users submit fairPerLight jobs each, all at once, into a pipeline whose
// LLM stages are the bottleneck (an LLM of fairDelay, design and latex
// concurrency llmConcurrency, the benchmark-only compiler). It runs twice on
// fresh resources: with fairness off (arrival order, SHEETPIPE_FAIRNESS=off)
// and on (the default), and reports the light users' enqueue-to-done and the
// throughput of each run (docs/fairness.md).
const (
	fairLight = 10
	fairDelay = 50 * time.Millisecond
	goalFair  = 0.90 // throughput with fairness on ÷ off
)

// fairnessResult is the fairness scenario's figures.
type fairnessResult struct {
	Flood, PerLight int
	Delay           time.Duration
	Off, On         fairRun
}

// fairRun is one run of the fairness scenario.
type fairRun struct {
	Light dist    // the light users' jobs, enqueue → done
	Flood dist    // the flood's jobs, enqueue → done
	Rate  float64 // every job over the run: jobs ÷ (last done − first sent)
}

// fairSizes are the flood's jobs and each light user's.
func fairSizes(quick bool) (flood, perLight int) {
	if quick {
		return 100, 2
	}
	return 1000, 5
}

func runFairness(ctx context.Context, srv *benchServer, quick bool) (*fairnessResult, error) {
	design, latex, err := offlineWorksheet(ctx)
	if err != nil {
		return nil, err
	}
	flood, perLight := fairSizes(quick)
	res := &fairnessResult{Flood: flood, PerLight: perLight, Delay: fairDelay}
	conc := map[events.Stage]int{events.StageDesign: llmConcurrency, events.StageLatex: llmConcurrency,
		events.StageCompile: 16}
	for _, fifo := range []bool{true, false} {
		h, err := startPipeline(ctx, srv, pipelineSetup{llm: &scriptedLLM{delay: fairDelay, design: design, latex: latex},
			compiler: fixedCompiler{}, concurrency: conc, fifo: fifo})
		if err != nil {
			return nil, err
		}
		run, err := fairLoad(ctx, srv, flood, perLight)
		h.stop()
		if err != nil {
			return nil, fmt.Errorf("fairness %s: %w", map[bool]string{true: "off", false: "on"}[fifo], err)
		}
		if fifo {
			res.Off = run
		} else {
			res.On = run
		}
	}
	return res, nil
}

// fairLoad sends the flood's requests, then the light users', as fast as the
// client publishes, and waits until every job completed.
func fairLoad(ctx context.Context, srv *benchServer, flood, perLight int) (fairRun, error) {
	nc, err := srv.connect("sheetbench-client")
	if err != nil {
		return fairRun{}, fmt.Errorf("client connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		return fairRun{}, err
	}
	floodIDs := newIDs(flood)
	var lightIDs []string
	users := map[string]string{}
	for _, id := range floodIDs {
		users[id] = "flood"
	}
	for u := range fairLight {
		for _, id := range newIDs(perLight) {
			lightIDs = append(lightIDs, id)
			users[id] = fmt.Sprintf("light-%d", u)
		}
	}
	all := append(slices.Clone(floodIDs), lightIDs...)
	tr, err := track(nc, all, nil)
	if err != nil {
		return fairRun{}, err
	}
	s := &submitter{js: js, tr: tr}
	start := time.Now()
	for i, id := range all {
		data, err := json.Marshal(events.JobRequest{JobID: id, UserID: users[id], Prompt: fmt.Sprintf("fairness %d", i)})
		if err != nil {
			return fairRun{}, err
		}
		tr.enqueued(id, time.Now())
		f, err := js.PublishAsync(events.SubjectPrompt, data, jetstream.WithMsgID(id), jetstream.WithStallWait(time.Minute))
		if err != nil {
			return fairRun{}, fmt.Errorf("publish request %s: %w", id, err)
		}
		s.futures = append(s.futures, f)
	}
	if err := s.confirmed(ctx); err != nil {
		return fairRun{}, err
	}
	// The LLM stages bound the run: 2 calls of fairDelay per job.
	if err := tr.wait(ctx, runTimeout(len(all), float64(llmConcurrency)/fairDelay.Seconds()/4)); err != nil {
		return fairRun{}, err
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var lightD, floodD []time.Duration
	var last time.Time
	for id, t := range tr.traces {
		d := t.done.Sub(t.enqueued)
		if users[id] == "flood" {
			floodD = append(floodD, d)
		} else {
			lightD = append(lightD, d)
		}
		if t.done.After(last) {
			last = t.done
		}
	}
	return fairRun{Light: distOf(lightD), Flood: distOf(floodD), Rate: float64(len(all)) / last.Sub(start).Seconds()}, nil
}

// fairnessRows are the scenario's rows of the results table.
func (r *Results) fairnessRows(t *table) {
	f := r.Fairness
	if f == nil {
		return
	}
	const s = "fairness"
	t.add(s, fmt.Sprintf("a flood user's %s jobs, then %d light users' %d each, at once (%s LLM, design and latex concurrency %d, benchmark-only compiler)",
		thousands(float64(f.Flood)), fairLight, f.PerLight, f.Delay, llmConcurrency), "fairness off (FIFO) → on")
	t.add(s, "light users: enqueue → done p50 / p99", fmt.Sprintf("%s / %s → %s / %s", ms(f.Off.Light.P50), ms(f.Off.Light.P99), ms(f.On.Light.P50), ms(f.On.Light.P99)))
	t.add(s, "flood user: enqueue → done p50 / p99", fmt.Sprintf("%s / %s → %s / %s", ms(f.Off.Flood.P50), ms(f.Off.Flood.P99), ms(f.On.Flood.P50), ms(f.On.Flood.P99)))
	t.add(s, "jobs/s, every job (jobs ÷ first send to last done)", fmt.Sprintf("%.1f → %.1f", f.Off.Rate, f.On.Rate))
}

// fairnessTarget is the scenario's target: throughput with fairness on ÷ off.
func (r *Results) fairnessTarget() target {
	t := target{Name: "Throughput with fairness on ÷ off, flood and light users", Goal: "≥ " + percent(goalFair)}
	if f := r.Fairness; f != nil && f.Off.Rate > 0 {
		ratio := f.On.Rate / f.Off.Rate
		t.Measured, t.Pass = fmt.Sprintf("%s (%.1f of %.1f jobs/s)", percent(ratio), f.On.Rate, f.Off.Rate), ratio >= goalFair
	}
	return t
}
