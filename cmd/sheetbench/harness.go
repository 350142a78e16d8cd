package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/maintenance"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// pipelineStreams are the streams behind sheetpipe's resources; each pipeline
// run starts from none of them. That includes the compile cache: a scenario's
// benchmark-only compiler must not leave PDFs for the real compiler's run to find.
var pipelineStreams = []string{events.StreamJobs, events.StreamEvents,
	"KV_" + kvstore.BucketJobs, "KV_" + kvstore.BucketConversations, "KV_" + kvstore.BucketBatches,
	"KV_" + kvstore.BucketDependents, "KV_" + broker.BucketPDFCache, "OBJ_" + broker.BucketPDFs}

// harness is the real pipeline running in this process on its own TCP
// connection to the bench server, as sheetd runs it.
type harness struct {
	nc    *nats.Conn
	pipe  *consumers.Pipeline
	plane *control.Plane
	loops *maintenance.Loops
	reg   *prometheus.Registry // the pipeline's metrics
}

// compiler is what the pipeline compiles with: fixedCompiler or *latex.Compiler.
type compiler interface {
	Compile(ctx context.Context, source string) ([]byte, error)
}

// pipelineSetup is what one pipeline run is built from.
type pipelineSetup struct {
	llm         *scriptedLLM
	compiler    compiler
	concurrency map[events.Stage]int // nil: consumers' defaults
	fifo        bool                 // fairness off (the fairness scenario's baseline)
}

// startPipeline deletes what a previous run left, provisions every resource and
// starts every stage.
func startPipeline(ctx context.Context, srv *benchServer, ps pipelineSetup) (*harness, error) {
	nc, err := srv.connect("sheetbench-pipeline")
	if err != nil {
		return nil, fmt.Errorf("pipeline connect: %w", err)
	}
	h := &harness{nc: nc}
	if err := h.start(ctx, ps); err != nil {
		nc.Close()
		return nil, err
	}
	return h, nil
}

func (h *harness) start(ctx context.Context, ps pipelineSetup) error {
	js, err := jetstream.New(h.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, name := range pipelineStreams {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", name, err)
		}
	}
	if err := broker.Provision(ctx, js, broker.Resources{}); err != nil {
		return err
	}
	h.reg = prometheus.NewRegistry()
	m := metrics.New(h.reg)
	store, err := kvstore.New(ctx, js, m)
	if err != nil {
		return err
	}
	h.plane, err = control.New(ctx, control.Config{Provider: ps.llm.Provider()}, control.Deps{JS: js, Store: store, Metrics: m})
	if err != nil {
		return err
	}
	h.pipe, err = consumers.New(ctx, consumers.Config{Concurrency: ps.concurrency, FIFO: ps.fifo},
		consumers.Deps{JS: js, Store: store, LLM: ps.llm, Compiler: ps.compiler, Submit: h.plane, Metrics: m})
	if err != nil {
		return err
	}
	if err := h.pipe.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	h.loops, err = maintenance.Start(context.WithoutCancel(ctx), maintenance.Config{}, maintenance.Deps{JS: js, Store: store, Metrics: m})
	return err
}

// stop stops the stages and closes the connection.
func (h *harness) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.pipe.Stop(ctx)
	if h.loops != nil {
		h.loops.Stop(ctx)
	}
	h.plane.Stop()
	h.nc.Close()
}

// busy returns the seconds each stage has spent handling messages so far
// (sheetpipe_stage_duration_seconds summed over outcomes), by stage.
func (h *harness) busy() (map[string]float64, error) {
	families, err := h.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "sheetpipe_stage_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "step" {
					out[l.GetValue()] += m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return out, nil
}
