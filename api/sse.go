package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// httpEvents streams the job's status events as server-sent events: the current
// state first, then each change, each flushed at once, with a keep-alive comment
// every Config.KeepAlive; the stream ends after a final state or when the client
// goes away. An unknown job is a JSON 404 before any streaming.
func (a *API) httpEvents(w http.ResponseWriter, r *http.Request) (string, error) {
	id := r.PathValue("id")
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	evs, err := a.ctl.Follow(ctx, id)
	if err != nil {
		return id, err
	}
	rc := http.NewResponseController(w)
	// A server-wide WriteTimeout would cut the stream; it has its own end.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return id, nil
	}
	keepAlive := time.NewTicker(a.cfg.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return id, nil
			}
			data, err := json.Marshal(ev)
			if err != nil {
				a.log.ErrorContext(ctx, "encode status event", "job_id", id, "error", err.Error())
				return id, nil
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", ev.Revision, data); err != nil {
				return id, nil
			}
		case <-keepAlive.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return id, nil
			}
		case <-ctx.Done():
			return id, nil
		}
		if err := rc.Flush(); err != nil {
			return id, nil
		}
	}
}
