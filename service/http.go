package service

import (
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/metrics"
)

func newMux(reg *prometheus.Registry, nc *nats.Conn, js jetstream.JetStream) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !nc.IsConnected() {
			http.Error(w, "nats: not connected", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for _, name := range []string{events.StreamJobs, events.StreamEvents} {
			if _, err := js.Stream(ctx, name); err != nil {
				http.Error(w, "stream "+name+": "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// pollPending exports each consumer's backlog (pending + unacknowledged) every few
// seconds until ctx ends.
func pollPending(ctx context.Context, js jetstream.JetStream, stages []events.Stage, m *metrics.Metrics) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		for _, st := range stages {
			c, err := js.Consumer(ctx, events.StreamJobs, string(st))
			if err != nil {
				continue
			}
			if info, err := c.Info(ctx); err == nil {
				m.ConsumerPending.WithLabelValues(string(st)).Set(float64(info.NumPending) + float64(info.NumAckPending))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
