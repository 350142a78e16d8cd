package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sheetpipe/sheetpipe/events"
)

// httpSubmitBatch takes a JSON batch {"batch_id"?, "jobs": [...]} or, as
// application/x-ndjson, one job request per line with the batch id in the query
// (?batch_id=); it answers 202 with Location /batches/{id}.
func (a *API) httpSubmitBatch(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, string, error) {
	data, err := a.body(w, r)
	if err != nil {
		return nil, "", err
	}
	for k := range r.URL.Query() {
		if k != "batch_id" {
			return nil, "", fmt.Errorf("%w: unknown query parameter %q (use batch_id)", events.ErrInvalid, k)
		}
	}
	var b events.BatchRequest
	switch mediaType(r) {
	case "", "application/json":
		b, err = events.DecodeBatch(data)
	case "application/x-ndjson", "application/jsonl":
		b, err = events.DecodeBatchLines(data)
	default:
		err = fmt.Errorf(`%w: Content-Type %s; send application/json {"jobs": [...]}, or one job request per line as application/x-ndjson`,
			ErrMediaType, r.Header.Get("Content-Type"))
	}
	if err != nil {
		return nil, "", err
	}
	if q := r.URL.Query().Get("batch_id"); q != "" {
		if b.BatchID != "" && b.BatchID != q {
			return nil, "", fmt.Errorf("%w: batch_id %q in the body is not the batch_id %q of the query", events.ErrInvalid, b.BatchID, q)
		}
		b.BatchID = q
	}
	reply, err := a.ctl.SubmitBatch(ctx, b)
	if err != nil {
		return nil, "", err
	}
	w.Header().Set("Location", "/batches/"+reply.BatchID)
	return reply, "", nil
}

func (a *API) httpBatch(ctx context.Context, _ http.ResponseWriter, r *http.Request) (any, string, error) {
	s, err := a.ctl.Batch(ctx, r.PathValue("id"))
	return s, "", err
}

// httpBatchEvents streams the batch's status as server-sent events ("event:
// batch"): every job first, then one status per change of one of its jobs,
// listing that job; the stream ends after the status that is done. An unknown
// batch is a JSON 404 before any streaming.
func (a *API) httpBatchEvents(w http.ResponseWriter, r *http.Request) (string, error) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch, err := a.ctl.FollowBatch(ctx, r.PathValue("id"))
	if err != nil {
		return "", err
	}
	n := 0
	streamSSE(ctx, a, w, ch, func(s events.BatchStatus) (string, error) {
		data, err := json.Marshal(s)
		n++
		return fmt.Sprintf("id: %d\nevent: batch\ndata: %s\n\n", n, data), err
	})
	return "", nil
}
