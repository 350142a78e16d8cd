package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
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
	streamSSE(ctx, a, w, evs, func(ev events.StatusEvent) (string, error) {
		data, err := json.Marshal(ev)
		return fmt.Sprintf("id: %d\nevent: status\ndata: %s\n\n", ev.Revision, data), err
	})
	return id, nil
}

// streamSSE writes each value from ch as the server-sent event frame returns,
// flushed at once, with a keep-alive comment every Config.KeepAlive, until ch
// closes or ctx ends (the client went away).
func streamSSE[T any](ctx context.Context, a *API, w http.ResponseWriter, ch <-chan T, frame func(T) (string, error)) {
	rc := http.NewResponseController(w)
	// A server-wide WriteTimeout would cut the stream; it has its own end.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	keepAlive := time.NewTicker(a.cfg.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return
			}
			text, err := frame(v)
			if err != nil {
				a.log.ErrorContext(ctx, "encode server-sent event", "error", err.Error())
				return
			}
			if _, err := io.WriteString(w, text); err != nil {
				return
			}
		case <-keepAlive.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
