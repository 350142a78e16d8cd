package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/buildinfo"
)

const namespace = "sheetpipe"

// Metrics holds the collectors. A nil *Metrics is valid and records nothing, so
// packages can be used without a registry (tools, some tests).
type Metrics struct {
	JobsSubmitted    prometheus.Counter
	JobsFinished     *prometheus.CounterVec   // status
	StageDuration    *prometheus.HistogramVec // step, outcome
	StageMessages    *prometheus.CounterVec   // step, outcome
	LLMDuration      *prometheus.HistogramVec // step
	LLMTokens        *prometheus.CounterVec   // step, model, kind (prompt|completion)
	CompileDuration  *prometheus.HistogramVec // outcome
	KVCASConflicts   *prometheus.CounterVec   // bucket
	Retries          *prometheus.CounterVec   // step
	JobsInFlight     *prometheus.GaugeVec     // step
	ConsumerPending  *prometheus.GaugeVec     // consumer
	EventPublishErrs prometheus.Counter
	JobsRecovered    *prometheus.CounterVec // step
	DeadLetters      *prometheus.CounterVec // kind (ticket|request|meta)
	JobsDeleted      prometheus.Counter
	// WebhookDeliveries counts webhook POST attempts by outcome (WebhookOutcomes).
	WebhookDeliveries *prometheus.CounterVec
	// WebhookDuration is the time of one webhook POST attempt, by outcome.
	WebhookDuration *prometheus.HistogramVec
	// EventsDropped counts status events refused by their check against KV, by
	// consumer (EventConsumers) and reason (EventDropReasons).
	EventsDropped *prometheus.CounterVec
	// Queue shows the queue limits (queue.go).
	Queue *QueueMetrics
	// LLMCost is the cost of the LLM's answers at LLM_PRICES, by step and model.
	LLMCost *prometheus.CounterVec
	// LLMRateLimitWait is the time an LLM call waited for the shared rate
	// limit (LLM_RPM, LLM_TPM), by model (llmlimit.go).
	LLMRateLimitWait *prometheus.HistogramVec
	// LLMBreakerOpen is 1 while the LLM client's circuit breaker is open (the
	// provider is down and the LLM stages hold their fetching), else 0.
	LLMBreakerOpen prometheus.Gauge
}

// WebhookOutcomes are the outcomes of one webhook attempt: delivered (2xx),
// retry (5xx, 408, 429, network error or timeout; redelivered later), failed
// (such an error on the last attempt), rejected (another status: never retried),
// refused (the address is one webhooks may not reach).
var WebhookOutcomes = []string{"delivered", "retry", "failed", "rejected", "refused"}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	durations := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		JobsSubmitted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
			Name: "jobs_submitted_total", Help: "Jobs created from requests on jobs.prompt."}),
		JobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "jobs_finished_total", Help: "Jobs that reached a final or user-facing end state, by status."},
			[]string{"status"}),
		StageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace,
			Name: "stage_duration_seconds", Help: "Time a stage spent on one message, by outcome.", Buckets: durations},
			[]string{"step", "outcome"}),
		StageMessages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "stage_messages_total", Help: "Messages handled by a stage, by outcome."},
			[]string{"step", "outcome"}),
		LLMDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace,
			Name: "llm_request_duration_seconds", Help: "LLM call latency by step.", Buckets: durations},
			[]string{"step"}),
		LLMTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "llm_tokens_total", Help: "LLM tokens used, by step, model and kind (prompt, completion)."},
			[]string{"step", "model", "kind"}),
		CompileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace,
			Name: "compile_duration_seconds", Help: "pdflatex run time by outcome.", Buckets: durations},
			[]string{"outcome"}),
		KVCASConflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "kv_cas_conflicts_total", Help: "Compare-and-swap writes retried after a revision mismatch, by bucket."},
			[]string{"bucket"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "retries_total", Help: "Automatic retries scheduled (transient errors and AI fixes), by step."},
			[]string{"step"}),
		JobsInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace,
			Name: "jobs_in_flight", Help: "Messages being worked on by this process, by step."},
			[]string{"step"}),
		ConsumerPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace,
			Name: "consumer_pending", Help: "Messages waiting in a stage queue's consumer (num_pending + ack_pending), by consumer."},
			[]string{"consumer"}),
		EventPublishErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
			Name: "event_publish_errors_total", Help: "Status events that could not be published."}),
		JobsRecovered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "jobs_recovered_total", Help: "Jobs the sweeper re-enqueued after their worker's lease expired, by step."},
			[]string{"step"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "dead_letters_total", Help: "Messages removed after reaching MaxDeliver, by kind (ticket, request, meta)."},
			[]string{"kind"}),
		JobsDeleted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
			Name: "jobs_deleted_total", Help: "Finished jobs deleted with their conversation and PDF after the retention."}),
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "webhook_deliveries_total", Help: "Webhook POST attempts, by outcome."},
			[]string{"outcome"}),
		WebhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace,
			Name: "webhook_duration_seconds", Help: "Time of one webhook POST attempt, by outcome.", Buckets: durations},
			[]string{"outcome"}),
	}
	reg.MustRegister(m.JobsSubmitted, m.JobsFinished, m.StageDuration, m.StageMessages,
		m.LLMDuration, m.LLMTokens, m.CompileDuration, m.KVCASConflicts, m.Retries,
		m.JobsInFlight, m.ConsumerPending, m.EventPublishErrs, m.JobsRecovered, m.DeadLetters,
		m.JobsDeleted, m.WebhookDeliveries, m.WebhookDuration)
	m.initLabels()
	m.EventsDropped = newEventsDropped(reg)
	m.Queue = newQueueMetrics(reg)
	m.LLMCost = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
		Name: "llm_cost_usd_total", Help: "LLM cost in US dollars at LLM_PRICES, by step and model (0 for a model without a price)."},
		[]string{"step", "model"})
	reg.MustRegister(m.LLMCost)
	m.LLMRateLimitWait = newLLMRateLimitWait(reg)
	m.LLMBreakerOpen = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace,
		Name: "llm_breaker_open", Help: "1 while the LLM circuit breaker is open (provider down, LLM stages paused), else 0."})
	reg.MustRegister(m.LLMBreakerOpen)
	registerBuildInfo(reg)
	return m
}

// registerBuildInfo adds sheetpipe_build_info{version,revision,goversion} 1: the
// build that is running (internal/buildinfo), to join on other series.
func registerBuildInfo(reg prometheus.Registerer) {
	bi := buildinfo.Get()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "The running build: version (git describe), revision and Go version; always 1."},
		[]string{"version", "revision", "goversion"})
	g.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
	reg.MustRegister(g)
}

// Label values known in advance, initialised so every series exists from the
// first scrape (a dashboard shows 0, not "no data").
var (
	stages   = []string{"prompt", "design", "latex", "compile", "fix"}
	llmSteps = []string{"design", "latex", "fix", "refine", "meta"}
	finals   = []string{"completed", "waiting_manual", "error", "aborted"}
)

func (m *Metrics) initLabels() {
	for _, st := range stages {
		m.JobsInFlight.WithLabelValues(st)
		m.Retries.WithLabelValues(st)
		m.StageMessages.WithLabelValues(st, "ok")
		m.StageDuration.WithLabelValues(st, "ok")
		m.JobsRecovered.WithLabelValues(st)
	}
	for _, q := range events.Queues() {
		m.ConsumerPending.WithLabelValues(q.Durable())
	}
	for _, kind := range []string{"ticket", "request", "meta"} {
		m.DeadLetters.WithLabelValues(kind)
	}
	// meta (description and tags) runs beside the pipeline: no job is ever
	// recovered at it.
	m.JobsInFlight.WithLabelValues("meta")
	m.Retries.WithLabelValues("meta")
	m.StageMessages.WithLabelValues("meta", "ok")
	m.StageDuration.WithLabelValues("meta", "ok")
	for _, st := range llmSteps {
		m.LLMDuration.WithLabelValues(st)
	}
	for _, s := range finals {
		m.JobsFinished.WithLabelValues(s)
	}
	for _, b := range []string{"jobs", "conversations"} {
		m.KVCASConflicts.WithLabelValues(b)
	}
	m.CompileDuration.WithLabelValues("ok")
	for _, o := range WebhookOutcomes {
		m.WebhookDeliveries.WithLabelValues(o)
	}
	m.WebhookDuration.WithLabelValues("delivered")
}

// WebhookAttempt records one webhook POST attempt.
func (m *Metrics) WebhookAttempt(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.WebhookDeliveries.WithLabelValues(outcome).Inc()
	m.WebhookDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// Recovered counts a job the sweeper re-enqueued at step.
func (m *Metrics) Recovered(step string) {
	if m != nil {
		m.JobsRecovered.WithLabelValues(step).Inc()
	}
}

// JobDeleted counts a finished job the janitor deleted.
func (m *Metrics) JobDeleted() {
	if m != nil {
		m.JobsDeleted.Inc()
	}
}

// DeadLettered counts a message removed after MaxDeliver.
func (m *Metrics) DeadLettered(kind string) {
	if m != nil {
		m.DeadLetters.WithLabelValues(kind).Inc()
	}
}

// CASConflict counts one revision mismatch on bucket.
func (m *Metrics) CASConflict(bucket string) {
	if m != nil {
		m.KVCASConflicts.WithLabelValues(bucket).Inc()
	}
}

// JobsInFlightFor is the in-flight gauge of step (a no-op gauge on nil Metrics).
func (m *Metrics) JobsInFlightFor(step string) prometheus.Gauge {
	if m == nil {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "unregistered"})
	}
	return m.JobsInFlight.WithLabelValues(step)
}

// StageDone records one handled message.
func (m *Metrics) StageDone(step, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.StageMessages.WithLabelValues(step, outcome).Inc()
	m.StageDuration.WithLabelValues(step, outcome).Observe(d.Seconds())
}

// LLMCall records one LLM request of step answered by model (its tokens and
// cost in US dollars).
func (m *Metrics) LLMCall(step, model string, d time.Duration, promptTokens, completionTokens int, cost float64) {
	if m == nil {
		return
	}
	m.LLMDuration.WithLabelValues(step).Observe(d.Seconds())
	m.LLMTokens.WithLabelValues(step, model, "prompt").Add(float64(promptTokens))
	m.LLMTokens.WithLabelValues(step, model, "completion").Add(float64(completionTokens))
	m.LLMCost.WithLabelValues(step, model).Add(cost)
}

// InitLLM creates the token and cost series of each LLM step for the model
// modelFor names for it, so that they exist from the first scrape.
func (m *Metrics) InitLLM(modelFor func(step string) string) {
	if m == nil {
		return
	}
	for _, st := range llmSteps {
		model := modelFor(st)
		m.LLMTokens.WithLabelValues(st, model, "prompt")
		m.LLMTokens.WithLabelValues(st, model, "completion")
		m.LLMCost.WithLabelValues(st, model)
	}
}

// Compiled records one compile run.
func (m *Metrics) Compiled(outcome string, d time.Duration) {
	if m != nil {
		m.CompileDuration.WithLabelValues(outcome).Observe(d.Seconds())
	}
}

// EventConsumers are the readers of jobs.status that check each event against
// KV before acting on it: the webhook sender and the server-sent event streams.
var EventConsumers = []string{"webhooks", "sse"}

// EventDropReasons are why a status event was dropped: malformed (not a status
// event), unknown_job (no such job), mismatch (the job was not in that status
// at that revision: forged), superseded (the job has been written more often
// since than the jobs bucket's history keeps, so the event cannot be checked).
var EventDropReasons = []string{"malformed", "unknown_job", "mismatch", "superseded"}

func newEventsDropped(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
		Name: "events_dropped_total", Help: "Status events dropped by their check against the jobs bucket, by consumer and reason."},
		[]string{"consumer", "reason"})
	reg.MustRegister(c)
	for _, consumer := range EventConsumers {
		for _, reason := range EventDropReasons {
			c.WithLabelValues(consumer, reason)
		}
	}
	return c
}

// EventDropped counts one status event consumer dropped for reason.
func (m *Metrics) EventDropped(consumer, reason string) {
	if m != nil {
		m.EventsDropped.WithLabelValues(consumer, reason).Inc()
	}
}

// LLMBreaker records the LLM circuit breaker opening (true) or closing.
func (m *Metrics) LLMBreaker(open bool) {
	if m == nil {
		return
	}
	v := 0.0
	if open {
		v = 1
	}
	m.LLMBreakerOpen.Set(v)
}
