package events

import "slices"

// Priority orders the tickets of one stage: a worker takes a high ticket before
// any normal one, and a normal one before any low one.
type Priority string

const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Priorities lists the priorities in the order workers prefer them.
var Priorities = []Priority{PriorityHigh, PriorityNormal, PriorityLow}

// Valid reports whether p is one of Priorities.
func (p Priority) Valid() bool {
	return p == PriorityHigh || p == PriorityNormal || p == PriorityLow
}

// StageMeta generates a job's description and tags beside the pipeline. It is not
// one of Stages: it never changes a job's status or step.
const (
	StageMeta   Stage = "meta"
	SubjectMeta       = "jobs.meta"
)

// Runnable lists every stage a process can run: Stages, then StageMeta.
func Runnable() []Stage { return append(slices.Clone(Stages), StageMeta) }

// Runnable reports whether s is one of Stages or StageMeta.
func (s Stage) Runnable() bool { return s.Valid() || s == StageMeta }

// Queue is one durable consumer of the JOBS stream: a stage's tickets of one
// priority.
type Queue struct {
	Stage    Stage
	Priority Priority
}

// Subject is the queue's filter subject: jobs.<stage> for normal tickets,
// jobs.<stage>.high and jobs.<stage>.low for the others.
func (q Queue) Subject() string {
	if q.Priority == PriorityNormal || q.Priority == "" {
		return q.Stage.Subject()
	}
	return q.Stage.Subject() + "." + string(q.Priority)
}

// Durable is the consumer's name: the stage's name for normal tickets,
// <stage>_high and <stage>_low for the others.
func (q Queue) Durable() string {
	if q.Priority == PriorityNormal || q.Priority == "" {
		return string(q.Stage)
	}
	return string(q.Stage) + "_" + string(q.Priority)
}

// QueuesOf lists the queues of stage in the order workers prefer them. Requests on
// jobs.prompt and meta tickets have one queue; the other stages have one per
// priority.
func QueuesOf(stage Stage) []Queue {
	if stage == StagePrompt || stage == StageMeta {
		return []Queue{{Stage: stage, Priority: PriorityNormal}}
	}
	qs := make([]Queue, 0, len(Priorities))
	for _, p := range Priorities {
		qs = append(qs, Queue{Stage: stage, Priority: p})
	}
	return qs
}

// Queues lists every consumer of the JOBS stream: each stage's queues, then meta's.
func Queues() []Queue {
	var qs []Queue
	for _, st := range Stages {
		qs = append(qs, QueuesOf(st)...)
	}
	return append(qs, QueuesOf(StageMeta)...)
}

// TicketQueue is where a ticket for stage goes for a job of priority p.
func TicketQueue(stage Stage, p Priority) Queue {
	if stage == StagePrompt || stage == StageMeta || !p.Valid() {
		p = PriorityNormal
	}
	return Queue{Stage: stage, Priority: p}
}
