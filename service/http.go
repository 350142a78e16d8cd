package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/metrics"
)

// newMux serves metrics and health; storage reports whether the server's storage
// takes writes, consuming whether every stage of this process consumes its
// consumer; sandbox (latex.SandboxBwrap or SandboxNone) is reported in /readyz's
// body.
func newMux(reg *prometheus.Registry, nc *nats.Conn, js jetstream.JetStream, storage, consuming func() error, sandbox string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		detail := "compile sandbox: bwrap\n"
		if sandbox != "bwrap" {
			detail = "compile sandbox: OFF (COMPILE_SANDBOX=none): pdflatex runs without a jail\n"
		}
		if err := errors.Join(ready(ctx, nc, js), storageReady(storage), consuming()); err != nil {
			http.Error(w, "not ready: "+err.Error()+"\n"+detail, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n" + detail))
	})
	return mux
}

// requiredStreams are the streams sheetd cannot work without: JOBS, JOB_EVENTS and
// the streams behind the KV buckets and the object store.
var requiredStreams = []string{events.StreamJobs, events.StreamEvents,
	"KV_" + kvstore.BucketJobs, "KV_" + kvstore.BucketConversations, "KV_" + kvstore.BucketBatches,
	"KV_" + kvstore.BucketDependents, "KV_" + kvstore.BucketActive, "OBJ_" + broker.BucketPDFs}

// ready is nil when sheetd can do its work: connected to NATS, and every required
// stream answers. Both recover on their own: the connection reconnects for ever,
// and a stream someone deleted counts again once it is re-created.
func ready(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	if !nc.IsConnected() {
		return fmt.Errorf("nats: not connected (%s)", nc.Status())
	}
	for _, name := range requiredStreams {
		if _, err := js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return nil
}

// llmReady names the LLM's unavailability (its circuit breaker is open) when
// this process runs a stage that asks it: those stages hold their fetching
// meanwhile. Liveness (/healthz) does not depend on it.
func llmReady(available func() error, stages []events.Stage) error {
	for _, st := range stages {
		switch st {
		case events.StageDesign, events.StageLatex, events.StageFix, events.StageMeta:
			if err := available(); err != nil {
				return fmt.Errorf("llm: %w", err)
			}
			return nil
		}
	}
	return nil
}

// storageReady names a storage failure: sheetd cannot take jobs while the
// server refuses writes.
func storageReady(storage func() error) error {
	if err := storage(); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// pollPending exports the backlog (pending + unacknowledged) of every queue of
// the given stages every few seconds until ctx ends.
func pollPending(ctx context.Context, js jetstream.JetStream, stages []events.Stage, m *metrics.Metrics) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		for _, st := range stages {
			for _, q := range events.QueuesOf(st) {
				c, err := js.Consumer(ctx, events.StreamJobs, q.Durable())
				if err != nil {
					continue
				}
				if info, err := c.Info(ctx); err == nil {
					m.ConsumerPending.WithLabelValues(q.Durable()).Set(float64(info.NumPending) + float64(info.NumAckPending))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
