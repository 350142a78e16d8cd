package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/events"
)

// TopUsers is how many users sheetpipe_queue_top_users shows.
const TopUsers = 10

// RefusalReasons are why a submission was refused by the queue limits:
// max_queued (the total) or max_queued_per_user.
var RefusalReasons = []string{events.LimitQueued, events.LimitQueuedPerUser}

// QueueMetrics are the series of the queue limits (docs/limits.md).
type QueueMetrics struct {
	// Jobs is the tickets waiting or held in each stage queue, by stage and
	// priority.
	Jobs *prometheus.GaugeVec
	// Refused counts submissions refused, by reason (RefusalReasons); a
	// refused batch counts once.
	Refused *prometheus.CounterVec
	// Top is the unfinished jobs of the TopUsers users with the most, by rank
	// (1..TopUsers) and user_id, as of the last recount; it is reset at each
	// recount, so it never has more than TopUsers series.
	Top *prometheus.GaugeVec
	// Unfinished is the unfinished jobs in total (the active index).
	Unfinished prometheus.Gauge
}

func newQueueMetrics(reg prometheus.Registerer) *QueueMetrics {
	q := &QueueMetrics{
		Jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace,
			Name: "queued_jobs", Help: "Tickets waiting or being worked on in each stage queue (num_pending + ack_pending), by stage and priority."},
			[]string{"stage", "priority"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "submissions_refused_total", Help: "Submissions refused by a queue limit, by reason (max_queued, max_queued_per_user); a batch counts once."},
			[]string{"reason"}),
		Top: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace,
			Name: "queue_top_users", Help: "Unfinished jobs of the 10 users with the most, by rank and user_id, as of the last recount."},
			[]string{"rank", "user_id"}),
		Unfinished: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace,
			Name: "unfinished_jobs", Help: "Jobs a stage may still act on (the active index), as of the last recount."}),
	}
	reg.MustRegister(q.Jobs, q.Refused, q.Top, q.Unfinished)
	for _, qu := range events.Queues() {
		q.Jobs.WithLabelValues(string(qu.Stage), string(qu.Priority))
	}
	for _, r := range RefusalReasons {
		q.Refused.WithLabelValues(r)
	}
	return q
}

// Refusal counts one submission refused for reason.
func (m *Metrics) Refusal(reason string) {
	if m != nil && m.Queue != nil {
		m.Queue.Refused.WithLabelValues(reason).Inc()
	}
}

// QueueDepth sets the gauges of one recount: total unfinished jobs, the top
// users (at most TopUsers, most first) and the tickets of each queue.
func (m *Metrics) QueueDepth(total int64, top []events.UserQueue, queues map[events.Queue]int64) {
	if m == nil || m.Queue == nil {
		return
	}
	m.Queue.Unfinished.Set(float64(total))
	m.Queue.Top.Reset()
	for i, u := range top[:min(len(top), TopUsers)] {
		m.Queue.Top.WithLabelValues(strconv.Itoa(i+1), u.UserID).Set(float64(u.Queued))
	}
	for q, n := range queues {
		m.Queue.Jobs.WithLabelValues(string(q.Stage), string(q.Priority)).Set(float64(n))
	}
}
