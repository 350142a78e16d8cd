package api

import (
	"bytes"
	"context"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
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

const (
	versioned = "the job (as in KV) with its revision"
	jobErrors = "400 bad body or job_id, 404 unknown job, 409 not allowed in the job's state"
)

var endpoints = []endpoint{
	{events.OpSubmit, "submit a worksheet job; replies once it is stored",
		`{"job_id"?: uuid, "user_id", "prompt", "max_retries"?: 0..10, "mode"?: "auto"|"manual"}`, `{"job_id"}`,
		"400 invalid request, 409 job_id taken by a different request",
		func(a *API, ctx context.Context, data []byte) (any, string, error) { return a.submit(ctx, data) }},
	{events.OpGet, "get a job", `{"job_id"}`, versioned, "400 bad body or job_id, 404 unknown job",
		byRef((*API).get)},
	{events.OpLatex, "replace a job's LaTeX by hand and compile it (not while running or aborted)",
		`{"job_id", "latex"}`, versioned, jobErrors,
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			var e events.LatexEdit
			if err := events.DecodeControl(data, &e); err != nil {
				return nil, e.JobID, err
			}
			v, err := a.editLatex(ctx, e)
			return v, e.JobID, err
		}},
	{events.OpRetry, "re-run the failed step of a job in error or waiting_manual", `{"job_id"}`, versioned, jobErrors,
		byRef((*API).retry)},
	{events.OpRefine, "revise a completed, error or waiting_manual job with an instruction and regenerate it",
		`{"job_id", "instruction"}`, versioned, jobErrors,
		func(a *API, ctx context.Context, data []byte) (any, string, error) {
			var r events.Refinement
			if err := events.DecodeControl(data, &r); err != nil {
				return nil, r.JobID, err
			}
			v, err := a.refine(ctx, r)
			return v, r.JobID, err
		}},
	{events.OpAbort, "abort a job that has not ended; in-flight work for it is cancelled", `{"job_id"}`, versioned, jobErrors,
		byRef((*API).abort)},
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

// byRef runs op on the job a {"job_id"} body names.
func byRef(op func(*API, context.Context, string) (kvstore.Versioned, error)) func(*API, context.Context, []byte) (any, string, error) {
	return func(a *API, ctx context.Context, data []byte) (any, string, error) {
		var ref events.JobRef
		if err := events.DecodeControl(data, &ref); err != nil {
			return nil, "", err
		}
		v, err := op(a, ctx, ref.JobID)
		return v, ref.JobID, err
	}
}
