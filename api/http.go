package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sheetpipe/sheetpipe/events"
)

// Register adds the /jobs, /batches, /queue and /usage routes to mux. Every route checks the bearer token;
// every error is JSON {"error"} with the status of its class, a wrong method
// included (405, with Allow).
func (a *API) Register(mux *http.ServeMux) {
	routes := []struct {
		method, path string
		h            http.Handler
	}{
		{http.MethodPost, "/jobs", a.jsonRoute(events.OpSubmit, http.StatusAccepted, a.httpSubmit)},
		{http.MethodGet, "/jobs", a.jsonRoute(events.OpList, http.StatusOK, a.httpList)},
		{http.MethodGet, "/jobs/{id}", a.jsonRoute(events.OpGet, http.StatusOK, byID(a.get))},
		{http.MethodPost, "/jobs/{id}/latex", a.jsonRoute(events.OpLatex, http.StatusOK, a.httpLatex)},
		{http.MethodPost, "/jobs/{id}/retry", a.jsonRoute(events.OpRetry, http.StatusOK, a.httpChange(a.retry))},
		{http.MethodPost, "/jobs/{id}/refine", a.jsonRoute(events.OpRefine, http.StatusOK, a.httpRefine)},
		{http.MethodPost, "/jobs/{id}/abort", a.jsonRoute(events.OpAbort, http.StatusOK, a.httpChange(a.abort))},
		{http.MethodGet, "/jobs/{id}/pdf", a.guard("pdf", a.httpPDF)},
		{http.MethodGet, "/jobs/{id}/events", a.guard("events", a.stream(a.httpEvents))},
		{http.MethodPost, "/batches", a.jsonRoute(events.OpBatch, http.StatusAccepted, a.httpSubmitBatch)},
		{http.MethodGet, "/batches/{id}", a.jsonRoute(events.OpBatchGet, http.StatusOK, a.httpBatch)},
		{http.MethodGet, "/batches/{id}/events", a.guard("batch.events", a.stream(a.httpBatchEvents))},
		{http.MethodGet, "/queue", a.jsonRoute(events.OpQueue, http.StatusOK, a.httpQueue)},
		{http.MethodGet, "/usage", a.jsonRoute(events.OpUsage, http.StatusOK, a.httpUsage)},
	}
	allowed := map[string][]string{}
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.path, rt.h)
		allowed[rt.path] = append(allowed[rt.path], rt.method)
		if rt.method == http.MethodGet {
			allowed[rt.path] = append(allowed[rt.path], http.MethodHead)
		}
	}
	// A pattern without a method is less specific than those with one, so it only
	// gets the methods no route takes.
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		mux.Handle(path, a.guard("method", func(w http.ResponseWriter, r *http.Request) (string, error) {
			w.Header().Set("Allow", allow)
			return r.PathValue("id"), fmt.Errorf("%w: %s %s; use %s", ErrMethod, r.Method, r.URL.Path, allow)
		}))
	}
}

// byID serves an operation on the job named by the path.
func byID(op func(context.Context, string) (events.Versioned, error)) func(context.Context, http.ResponseWriter, *http.Request) (any, string, error) {
	return func(ctx context.Context, _ http.ResponseWriter, r *http.Request) (any, string, error) {
		id := r.PathValue("id")
		v, err := op(ctx, id)
		return v, id, err
	}
}

// guard checks the token, then runs h; an error h returns (before it wrote
// anything) is answered as JSON and logged with the job id h returns. A change
// refused as stale also carries the job's current revision.
func (a *API) guard(op string, h func(http.ResponseWriter, *http.Request) (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jobID, err := r.PathValue("id"), a.authorize(w, r)
		if err == nil {
			jobID, err = h(w, r)
		}
		if err != nil {
			code := codeOf(err)
			if qe := events.AsQueueFull(err); qe != nil {
				w.Header().Set("Retry-After", strconv.Itoa(qe.RetryAfter))
			}
			a.failed(r.Context(), "http", op, jobID, code, err)
			writeJSON(w, code, events.ErrorReply{Error: messageOf(err), Revision: events.RevisionOf(err)})
		}
	})
}

// jsonRoute serves an operation that answers one JSON value with status, within
// Config.Timeout; a job is answered with its revision as ETag.
func (a *API) jsonRoute(op string, status int, fn func(context.Context, http.ResponseWriter, *http.Request) (any, string, error)) http.Handler {
	return a.guard(op, func(w http.ResponseWriter, r *http.Request) (string, error) {
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
		defer cancel()
		v, jobID, err := fn(ctx, w, r)
		if err != nil {
			return jobID, err
		}
		if j, ok := v.(events.Versioned); ok {
			w.Header().Set("ETag", etag(j.Revision))
		}
		writeJSON(w, status, v)
		return jobID, nil
	})
}

// authorize checks the bearer token in constant time. Without a token /jobs is
// open on loopback and refused on a public listener.
func (a *API) authorize(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Token == "" {
		if a.cfg.Public {
			return fmt.Errorf("%w: /jobs and /batches are served on a public address without a token; set SHEETPIPE_API_TOKEN", ErrNoToken)
		}
		return nil
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sheetpipe"`)
		return fmt.Errorf("%w: send the API token as Authorization: Bearer <token>", ErrUnauthorized)
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(a.cfg.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sheetpipe", error="invalid_token"`)
		return fmt.Errorf("%w: the bearer token is wrong", ErrUnauthorized)
	}
	return nil
}

func (a *API) httpSubmit(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, string, error) {
	data, err := a.body(w, r)
	if err != nil {
		return nil, "", err
	}
	reply, id, err := a.submit(ctx, data)
	if err == nil {
		w.Header().Set("Location", "/jobs/"+id)
	}
	return reply, id, err
}

// httpLatex takes JSON {"latex", "if_revision"?} or, as text/plain or
// application/x-tex, the LaTeX itself; If-Match may name the base revision.
func (a *API) httpLatex(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, string, error) {
	id := r.PathValue("id")
	data, err := a.body(w, r)
	if err != nil {
		return nil, id, err
	}
	e := events.LatexEdit{JobID: id}
	switch mediaType(r) {
	case "text/plain", "application/x-tex":
		e.Latex = string(data)
	case "", "application/json":
		if err := events.DecodeControl(data, &e); err != nil {
			return nil, id, err
		}
		if e.JobID, err = samePathJob(e.JobID, id); err != nil {
			return nil, id, err
		}
	default:
		return nil, id, fmt.Errorf(`%w: Content-Type %s; send application/json {"latex": "..."}, or the LaTeX itself as text/plain or application/x-tex`,
			ErrMediaType, r.Header.Get("Content-Type"))
	}
	if e.IfRevision, err = baseRevision(r, e.IfRevision); err != nil {
		return nil, id, err
	}
	v, err := a.editLatex(ctx, e)
	return v, id, err
}

func (a *API) httpRefine(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, string, error) {
	id := r.PathValue("id")
	data, err := a.body(w, r)
	if err != nil {
		return nil, id, err
	}
	ref := events.Refinement{JobID: id}
	if err := events.DecodeControl(data, &ref); err != nil {
		return nil, id, err
	}
	if ref.JobID, err = samePathJob(ref.JobID, id); err != nil {
		return nil, id, err
	}
	if ref.IfRevision, err = baseRevision(r, ref.IfRevision); err != nil {
		return nil, id, err
	}
	v, err := a.refine(ctx, ref)
	return v, id, err
}

// httpChange serves retry or abort of the job of the path. The body is optional:
// empty, or JSON {"job_id"?, "if_revision"?}; If-Match may name the base revision.
func (a *API) httpChange(op func(context.Context, events.JobChange) (events.Versioned, error)) func(context.Context, http.ResponseWriter, *http.Request) (any, string, error) {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, string, error) {
		id := r.PathValue("id")
		data, err := a.body(w, r)
		if err != nil {
			return nil, id, err
		}
		c := events.JobChange{JobID: id}
		if len(bytes.TrimSpace(data)) > 0 {
			if mt := mediaType(r); mt != "" && mt != "application/json" {
				return nil, id, fmt.Errorf(`%w: Content-Type %s; send no body, or application/json {"if_revision": n}`, ErrMediaType, r.Header.Get("Content-Type"))
			}
			if err := events.DecodeControl(data, &c); err != nil {
				return nil, id, err
			}
			if c.JobID, err = samePathJob(c.JobID, id); err != nil {
				return nil, id, err
			}
		}
		if c.IfRevision, err = baseRevision(r, c.IfRevision); err != nil {
			return nil, id, err
		}
		v, err := op(ctx, c)
		return v, id, err
	}
}

func (a *API) httpList(ctx context.Context, _ http.ResponseWriter, r *http.Request) (any, string, error) {
	q, err := listQuery(r.URL.Query())
	if err != nil {
		return nil, "", err
	}
	reply, err := a.ctl.List(ctx, q)
	return reply, "", err
}

// listQuery reads ?status=&user_id=&limit=&priority=&batch_id=&text=&before=; any
// other parameter is refused.
func listQuery(v url.Values) (events.ListQuery, error) {
	for k := range v {
		if !strings.Contains(" status user_id limit priority batch_id text before ", " "+k+" ") {
			return events.ListQuery{}, fmt.Errorf("%w: unknown query parameter %q (use status, user_id, limit, priority, batch_id, text, before)", events.ErrInvalid, k)
		}
	}
	q := events.ListQuery{Status: events.Status(v.Get("status")), UserID: v.Get("user_id"),
		Priority: events.Priority(v.Get("priority")), BatchID: v.Get("batch_id"), Text: v.Get("text"), Before: v.Get("before")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, fmt.Errorf("%w: limit %q is not a whole number", events.ErrInvalid, s)
		}
		if n == 0 { // a zero Limit would read as absent
			return q, fmt.Errorf("%w: limit 0 is outside 1..%d", events.ErrInvalid, events.MaxListLimit)
		}
		q.Limit = n
	}
	return q, nil
}

func (a *API) httpPDF(w http.ResponseWriter, r *http.Request) (string, error) {
	id, err := events.JobIDOf(r.PathValue("id"))
	if err != nil {
		return r.PathValue("id"), err
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
	defer cancel()
	pdf, err := a.ctl.PDF(ctx, id)
	if err != nil {
		return id, err
	}
	h := w.Header()
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id+".pdf"))
	h.Set("Content-Length", strconv.Itoa(len(pdf)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(pdf)
	return id, nil
}

// body reads the request body up to Config.MaxBodyBytes.
func (a *API) body(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: body is more than the %d bytes allowed", ErrTooLarge, tooLarge.Limit)
	case err != nil:
		return nil, fmt.Errorf("%w: read body: %v", events.ErrInvalid, err)
	}
	return data, nil
}

// samePathJob checks that a job_id given in a body names the job of the path.
func samePathJob(bodyID, pathID string) (string, error) {
	if bodyID == "" || bodyID == pathID {
		return pathID, nil
	}
	b, errB := events.JobIDOf(bodyID)
	p, errP := events.JobIDOf(pathID)
	if errB != nil || errP != nil || b != p {
		return "", fmt.Errorf("%w: job_id %q in the body is not the job %q of the path", events.ErrInvalid, bodyID, pathID)
	}
	return pathID, nil
}

func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// httpUsage serves GET /usage?user_id=&since=&until=; any other parameter is
// refused, as is a parameter given twice.
func (a *API) httpUsage(ctx context.Context, _ http.ResponseWriter, r *http.Request) (any, string, error) {
	v := r.URL.Query()
	for k, vals := range v {
		switch {
		case k != "user_id" && k != "since" && k != "until":
			return nil, "", fmt.Errorf("%w: unknown query parameter %q (use user_id, since, until)", events.ErrInvalid, k)
		case len(vals) > 1:
			return nil, "", fmt.Errorf("%w: query parameter %q is given twice", events.ErrInvalid, k)
		}
	}
	reply, err := a.ctl.Usage(ctx, events.UsageQuery{UserID: v.Get("user_id"), Since: v.Get("since"), Until: v.Get("until")})
	return reply, "", err
}
