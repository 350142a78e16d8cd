package testpipeline

import (
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// Start runs a fixture with the offline LLM and the control API's micro service
// "sheetpipe" on the server's connection, for the packages around the pipeline
// (client, sheetctl), and returns its server.
func Start(t testing.TB) *testnats.Server {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is Start with the fake LLM answering as h does (nil: the offline
// LLM).
func StartWith(t testing.TB, h fakellm.Handler) *testnats.Server {
	t.Helper()
	f := New(t, Options{LLM: h, Config: []func(*Setup){func(s *Setup) {
		s.Pipeline.RetryBase, s.Pipeline.RetryMax = 50*time.Millisecond, 0
	}}})
	control := api.New(f.Plane, api.Config{}, nil)
	if err := control.StartMicro(f.NATS.NC); err != nil {
		t.Fatalf("start control API: %v", err)
	}
	// Registered after the pipeline's, so it runs first: requests stop before the
	// stages they reach do.
	t.Cleanup(func() {
		if err := control.Stop(); err != nil {
			t.Errorf("stop control API: %v", err)
		}
	})
	return f.NATS
}
