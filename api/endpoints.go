package api

import (
	"bytes"
	"context"
	"strings"

	"github.com/sheetpipe/sheetpipe/events"
)

// endpoint is one operation of the micro service. run decodes a request body,
// does the operation and returns the reply and the job id it concerned; the rest
// is the endpoint's metadata, shown by `nats micro info sheetpipe`.
type endpoint struct {
	op       string
	doc      string
	request  string
	response string
	errors   string
	run      func(a *API, ctx context.Context, data []byte) (any, string, error)
}

// submitRequest is the request schema of submit (and of each job of a batch).
const submitRequest = `{"job_id"?: uuid, "user_id", "prompt", "max_retries"?: 0..10, "mode"?: "auto"|"manual", ` +
	`"priority"?: "high"|"normal"|"low", "depends_on"?: [job id, up to 16], "webhook_url"?: http(s) URL, ` +
	`"token_budget"?: tokens (at most SHEETPIPE_JOB_TOKEN_BUDGET when set)}`

// The request and reply schemas of usage.
const (
	usageRequest = `{"user_id", "since"?: YYYY-MM-DD or RFC 3339 (default: 29 days before until), "until"?: same (default: today, UTC)}`
	usageReply   = `{"user_id", "since", "until", "prompt_tokens", "completion_tokens", "calls", "cost_usd"}`
)

const (
	versioned = "the job (as in KV) with its revision"
	jobErrors = "400 bad body, job_id or if_revision, 404 unknown job, 409 not allowed in the job's state, " +
		`or the job is no longer at if_revision (body {"error", "revision": its current revision}; nothing changed)`
	// ifRevision documents the optional field of every change.
	ifRevision = `"if_revision"?: revision the change is based on (>= 1; refused with 409 unless the job is still at it)`
)

var endpoints = []endpoint{
	{events.OpSubmit, "submit a worksheet job; replies once it is stored",
		submitRequest, `{"job_id"}`,
		"400 invalid request, 409 job_id taken by a different request, 429 queue full (nothing stored)",
		func(a *API, ctx context.Context, data []byte) (any, string, error) { return a.submit(ctx, data) }},
	{events.OpGet, "get a job", `{"job_id"}`, versioned, "400 bad body or job_id, 404 unknown job",
		byRef((*API).get)},
	{events.OpLatex, "replace a job's LaTeX by hand and compile it (not while running or aborted)",
		`{"job_id", "latex", ` + ifRevision + `}`, versioned, jobErrors,
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			var e events.LatexEdit
			if err := events.DecodeControl(data, &e); err != nil {
				return nil, e.JobID, err
			}
			v, err := a.editLatex(ctx, e)
			return v, e.JobID, err
		}},
	{events.OpRetry, "re-run the failed step of a job in error or waiting_manual", `{"job_id", ` + ifRevision + `}`, versioned, jobErrors,
		byChange((*API).retry)},
	{events.OpRefine, "revise a completed, error or waiting_manual job with an instruction and regenerate it",
		`{"job_id", "instruction", ` + ifRevision + `}`, versioned, jobErrors,
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			var r events.Refinement
			if err := events.DecodeControl(data, &r); err != nil {
				return nil, r.JobID, err
			}
			v, err := a.refine(ctx, r)
			return v, r.JobID, err
		}},
	{events.OpAbort, "abort a job that has not ended; in-flight work for it is cancelled", `{"job_id", ` + ifRevision + `}`, versioned, jobErrors,
		byChange((*API).abort)},
	{events.OpBatch, "submit many job requests at once; replies once every job is stored",
		`{"batch_id"?: uuid, "jobs": [job request, 1..1000]}`, `{"batch_id", "job_ids": [...]}`,
		"400 invalid batch (names the first bad job), 409 batch_id or a job_id taken by a different request, 429 queue full (nothing stored)",
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			b, err := events.DecodeBatch(data)
			if err != nil {
				return nil, "", err
			}
			reply, err := a.ctl.SubmitBatch(ctx, b)
			return reply, "", err
		}},
	{events.OpBatchGet, "get the aggregate status of a batch: counts per status, done when every job has ended",
		`{"batch_id"}`, `{"batch_id", "total", "counts": {status: n}, "done", "jobs": [{"job_id", "status", "step", "revision"}], "created_at"}`,
		"400 bad body or batch_id, 404 unknown batch",
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			var ref events.BatchRef
			if err := events.DecodeControl(data, &ref); err != nil {
				return nil, "", err
			}
			s, err := a.ctl.Batch(ctx, ref.BatchID)
			return s, "", err
		}},
	{events.OpQueue, "the unfinished jobs against the queue limits: in total, of one user, and the users with the most",
		`{"user_id"?}`, `{"queued", "max_queued", "max_queued_per_user", "user"?: {"user_id", "queued"}, "top": [{"user_id", "queued"}], "top_as_of"?}`,
		"400 bad body",
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			var q events.QueueQuery
			if len(bytes.TrimSpace(data)) > 0 {
				if err := events.DecodeControl(data, &q); err != nil {
					return nil, "", err
				}
			}
			reply, err := a.ctl.Queue(ctx, q)
			return reply, "", err
		}},
	{events.OpUsage, "a user's LLM usage over a period: tokens, paid calls and cost, from per-user daily counters",
		usageRequest, usageReply, "400 bad body, user_id, since or until",
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			var q events.UsageQuery
			if err := events.DecodeControl(data, &q); err != nil {
				return nil, "", err
			}
			reply, err := a.ctl.Usage(ctx, q)
			return reply, "", err
		}},
	{events.OpList, "list jobs, newest first; an empty body lists all (up to the default limit of 50)",
		`{"status"?, "user_id"?, "limit"?: 1..1000}`, `{"jobs": [job summary], "truncated"}`, "400 bad status or limit",
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			var q events.ListQuery
			if len(bytes.TrimSpace(data)) > 0 {
				if err := events.DecodeControl(data, &q); err != nil {
					return nil, "", err
				}
			}
			reply, err := a.ctl.List(ctx, q)
			return reply, "", err
		}},
}

// endpointName is the micro endpoint name of operation op, whose subject is
// sheetpipe.<op>: names may not have dots ("batch.get" is "batch_get").
func endpointName(op string) string { return strings.ReplaceAll(op, ".", "_") }

// byRef runs op on the job a {"job_id"} body names.
func byRef(op func(*API, context.Context, string) (events.Versioned, error)) func(*API, context.Context, []byte) (any, string, error) {
	return func(a *API, ctx context.Context, data []byte) (any, string, error) {
		var ref events.JobRef
		if err := events.DecodeControl(data, &ref); err != nil {
			return nil, "", err
		}
		v, err := op(a, ctx, ref.JobID)
		return v, ref.JobID, err
	}
}

// byChange runs op on the {"job_id", "if_revision"?} a body gives.
func byChange(op func(*API, context.Context, events.JobChange) (events.Versioned, error)) func(*API, context.Context, []byte) (any, string, error) {
	return func(a *API, ctx context.Context, data []byte) (any, string, error) {
		var c events.JobChange
		if err := events.DecodeControl(data, &c); err != nil {
			return nil, "", err
		}
		v, err := op(a, ctx, c)
		return v, c.JobID, err
	}
}
