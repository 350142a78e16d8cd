package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newLLMRateLimitWait(reg prometheus.Registerer) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace,
		Name: "llm_ratelimit_wait_seconds", Help: "Time an LLM call waited for capacity of the shared rate limit (LLM_RPM, LLM_TPM), by model.",
		Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}},
		[]string{"model"})
	reg.MustRegister(h)
	return h
}

// LLMWaited records that a call to model waited d for the shared rate limit.
func (m *Metrics) LLMWaited(model string, d time.Duration) {
	if m != nil {
		m.LLMRateLimitWait.WithLabelValues(model).Observe(d.Seconds())
	}
}
