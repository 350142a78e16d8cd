package ai

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name    string
		reply   fakellm.Reply
		timeout time.Duration
		setup   func(t *testing.T, srv *fakellm.Server) context.Context
		history []Turn
		want    error
	}{
		{name: "429 rate limited", reply: fakellm.Reply{Status: http.StatusTooManyRequests}, want: ErrTransient},
		{name: "500 server error", reply: fakellm.Reply{Status: http.StatusInternalServerError}, want: ErrTransient},
		{name: "503 overloaded", reply: fakellm.Reply{Status: http.StatusServiceUnavailable}, want: ErrTransient},
		{name: "502 with html body", reply: fakellm.Reply{Status: http.StatusBadGateway, RawBody: "<html>bad gateway</html>"}, want: ErrTransient},
		{name: "400 bad request", reply: fakellm.Reply{Status: http.StatusBadRequest}, want: ErrPermanent},
		{name: "401 bad key", reply: fakellm.Reply{Status: http.StatusUnauthorized}, want: ErrPermanent},
		{name: "404 unknown model", reply: fakellm.Reply{Status: http.StatusNotFound}, want: ErrPermanent},
		{name: "empty content", reply: fakellm.Reply{Content: ""}, want: ErrTransient},
		{name: "only fences", reply: fakellm.Reply{Content: "```\n\n```"}, want: ErrTransient},
		{name: "garbage 200 body", reply: fakellm.Reply{RawBody: "not json"}, want: ErrTransient},
		{
			name:    "server slower than the per-call timeout",
			reply:   fakellm.Reply{Content: "late", Delay: 10 * time.Second},
			timeout: 100 * time.Millisecond,
			want:    ErrTransient,
		},
		{
			name:  "connection refused",
			reply: fakellm.Reply{Content: "never sent"},
			setup: func(t *testing.T, srv *fakellm.Server) context.Context {
				srv.Close()
				return t.Context()
			},
			want: ErrTransient,
		},
		{
			name:  "caller cancels",
			reply: fakellm.Reply{Content: "late", Delay: 10 * time.Second},
			setup: func(t *testing.T, _ *fakellm.Server) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx
			},
			want: context.Canceled,
		},
		{
			name:  "caller context already cancelled",
			reply: fakellm.Reply{Content: "never sent"},
			setup: func(t *testing.T, _ *fakellm.Server) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			want: context.Canceled,
		},
		{
			name:    "history with unknown role",
			reply:   fakellm.Reply{Content: "never sent"},
			history: []Turn{{Role: "tool", Content: "x"}},
			want:    ErrPermanent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			c, srv := newFakeClient(t, Config{Timeout: timeout}, fakellm.Script(tt.reply))
			ctx := t.Context()
			if tt.setup != nil {
				ctx = tt.setup(t, srv)
			}
			start := time.Now()
			reply, err := c.GenerateDesign(ctx, tt.history, "fractions")
			t.Logf("error: %v", err)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			transient, permanent := errors.Is(err, ErrTransient), errors.Is(err, ErrPermanent)
			if tt.want == context.Canceled {
				if transient || permanent {
					t.Errorf("cancelled call error %v also wraps a kind sentinel", err)
				}
			} else if transient == permanent {
				t.Errorf("error %v: transient=%v permanent=%v, want exactly one", err, transient, permanent)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("call took %v", d)
			}
			if reply.Turns != nil || reply.Text != "" {
				t.Errorf("failed call returned a reply: %+v", reply)
			}
		})
	}
}
