// Package testpipeline runs the whole sheetpipe pipeline for tests of the
// packages around it (client, sheetctl): a provisioned in-process JetStream
// server, every stage, the offline LLM, the real pdflatex and the control API's
// micro service "sheetpipe" on the server's connection, stopped by t.Cleanup.
package testpipeline

import (
	"context"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/consumers"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/latex"
	"github.com/sheetpipe/sheetpipe/maintenance"
)

// Start starts a provisioned test server and the pipeline on it.
func Start(t testing.TB) *testnats.Server {
	t.Helper()
	s := testnats.Provisioned(t, broker.Resources{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := kvstore.New(ctx, s.JS, nil)
	if err != nil {
		t.Fatalf("kvstore: %v", err)
	}
	llm, err := ai.New(ai.Config{})
	if err != nil {
		t.Fatalf("ai: %v", err)
	}
	compiler, err := latex.New(latex.Config{})
	if err != nil {
		t.Fatalf("latex: %v", err)
	}
	plane, err := control.New(ctx, control.Config{Provider: llm.Provider()}, control.Deps{JS: s.JS, Store: store})
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	t.Cleanup(plane.Stop)
	p, err := consumers.New(ctx, consumers.Config{RetryBase: 50 * time.Millisecond},
		consumers.Deps{JS: s.JS, Store: store, LLM: llm, Compiler: compiler, Submit: plane})
	if err != nil {
		t.Fatalf("consumers: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("start pipeline: %v", err)
	}
	loops, err := maintenance.Start(context.Background(), maintenance.Config{}, maintenance.Deps{JS: s.JS, Store: store})
	if err != nil {
		t.Fatalf("start maintenance: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.Stop(ctx)
		loops.Stop(ctx)
	})
	controlAPI := api.New(plane, api.Config{}, nil)
	if err := controlAPI.StartMicro(s.NC); err != nil {
		t.Fatalf("start control API: %v", err)
	}
	// Registered after the pipeline's, so it runs first: requests stop before the
	// stages they reach do.
	t.Cleanup(func() {
		if err := controlAPI.Stop(); err != nil {
			t.Errorf("stop control API: %v", err)
		}
	})
	return s
}
