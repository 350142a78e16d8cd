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

// streamRetryAfter is the Retry-After, in seconds, of a stream refused because
// Config.MaxStreams are open.
const streamRetryAfter = "5"

// stream serves h, a server-sent event stream, while fewer than
// Config.MaxStreams streams are open in this process; beyond, it answers 503
// with Retry-After. Each stream holds a JetStream consumer and a goroutine for
// as long as its client stays.
func (a *API) stream(h func(http.ResponseWriter, *http.Request) (string, error)) func(http.ResponseWriter, *http.Request) (string, error) {
	return func(w http.ResponseWriter, r *http.Request) (string, error) {
		if a.streams.Add(1) > int64(a.cfg.MaxStreams) {
			a.streams.Add(-1)
			w.Header().Set("Retry-After", streamRetryAfter)
			return r.PathValue("id"), fmt.Errorf("%w: %d event streams are open, the most this process serves (SHEETPIPE_MAX_STREAMS); try again later",
				ErrBusy, a.cfg.MaxStreams)
		}
		defer a.streams.Add(-1)
		return h(w, r)
	}
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
