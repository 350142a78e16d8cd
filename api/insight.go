package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sheetpipe/sheetpipe/events"
)

// Insight is what the web console reads beyond the control operations;
// *control.Plane implements it.
type Insight interface {
	// Overview counts jobs by status, tickets by queue and running jobs by step, and lists recent failures.
	Overview(ctx context.Context) (events.Overview, error)
	// Conversation returns a job's LLM conversation (empty while it has none); events.ErrNotFound for an unknown job.
	Conversation(ctx context.Context, id string) (*events.Conversation, error)
	// History returns the job's status events that JOB_EVENTS still holds, oldest first, ending with its current state.
	History(ctx context.Context, id string) ([]events.StatusEvent, error)
	// FollowAll sends every job's status events from now on until ctx ends.
	FollowAll(ctx context.Context) (<-chan events.StatusEvent, error)
}

// RegisterInsight adds the read-only routes the web console uses, with the same
// token rules as /jobs: GET /stats, GET /jobs/{id}/conversation,
// GET /jobs/{id}/history and GET /events (every job's status events as
// server-sent events, from now on).
func (a *API) RegisterInsight(mux *http.ServeMux, in Insight) {
	routes := map[string]http.Handler{
		"/stats": a.jsonRoute("stats", http.StatusOK, func(ctx context.Context, _ http.ResponseWriter, _ *http.Request) (any, string, error) {
			o, err := in.Overview(ctx)
			return o, "", err
		}),
		"/jobs/{id}/conversation": a.jsonRoute("conversation", http.StatusOK, func(ctx context.Context, _ http.ResponseWriter, r *http.Request) (any, string, error) {
			c, err := in.Conversation(ctx, r.PathValue("id"))
			return c, r.PathValue("id"), err
		}),
		"/jobs/{id}/history": a.jsonRoute("history", http.StatusOK, func(ctx context.Context, _ http.ResponseWriter, r *http.Request) (any, string, error) {
			evs, err := in.History(ctx, r.PathValue("id"))
			return map[string]any{"events": evs}, r.PathValue("id"), err
		}),
		"/events": a.guard("events.all", a.stream(func(w http.ResponseWriter, r *http.Request) (string, error) {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			evs, err := in.FollowAll(ctx)
			if err != nil {
				return "", err
			}
			streamSSE(ctx, a, w, evs, func(ev events.StatusEvent) (string, error) {
				data, err := json.Marshal(ev)
				return fmt.Sprintf("event: status\ndata: %s\n\n", data), err
			})
			return "", nil
		})),
	}
	for path, h := range routes {
		mux.Handle("GET "+path, h)
		mux.Handle(path, a.guard("method", func(w http.ResponseWriter, r *http.Request) (string, error) {
			w.Header().Set("Allow", "GET, HEAD")
			return r.PathValue("id"), fmt.Errorf("%w: %s %s; use GET", ErrMethod, r.Method, r.URL.Path)
		}))
	}
}

// httpQueue serves GET /queue?user_id=.
func (a *API) httpQueue(ctx context.Context, _ http.ResponseWriter, r *http.Request) (any, string, error) {
	reply, err := a.ctl.Queue(ctx, events.QueueQuery{UserID: r.URL.Query().Get("user_id")})
	return reply, "", err
}
