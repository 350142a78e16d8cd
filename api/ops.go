package api

import (
	"context"

	"github.com/sheetpipe/sheetpipe/events"
)

// The operations both transports serve, once decoded. Validation is the
// pipeline's: it normalises job ids and checks every field.

// submit stores the request's job and replies its id; it returns only once the
// job is in KV, so a get right after it finds the job.
func (a *API) submit(ctx context.Context, data []byte) (events.SubmitReply, string, error) {
	req, err := events.DecodeRequest(data)
	if err != nil {
		return events.SubmitReply{}, req.JobID, err
	}
	id, err := a.ctl.Submit(ctx, req)
	if err != nil {
		return events.SubmitReply{}, req.JobID, err
	}
	return events.SubmitReply{JobID: id}, id, nil
}

func (a *API) get(ctx context.Context, id string) (events.Versioned, error) {
	j, rev, err := a.ctl.Get(ctx, id)
	if err != nil {
		return events.Versioned{}, err
	}
	return events.Versioned{Job: *j, Revision: rev}, nil
}

// changed replies to a user's change: the job as the change left it, with the
// revision of the change's own status event.
func changed(v *events.Versioned, err error) (events.Versioned, error) {
	if err != nil {
		return events.Versioned{}, err
	}
	return *v, nil
}

func (a *API) editLatex(ctx context.Context, e events.LatexEdit) (events.Versioned, error) {
	return changed(a.ctl.EditLatex(ctx, e))
}

func (a *API) retry(ctx context.Context, c events.JobChange) (events.Versioned, error) {
	return changed(a.ctl.Retry(ctx, c))
}

func (a *API) refine(ctx context.Context, r events.Refinement) (events.Versioned, error) {
	return changed(a.ctl.Refine(ctx, r))
}

func (a *API) abort(ctx context.Context, c events.JobChange) (events.Versioned, error) {
	return changed(a.ctl.Abort(ctx, c))
}
