package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// idleMsg is a delivered message whose settlement the test ignores.
type idleMsg struct{ jetstream.Msg }

func (idleMsg) InProgress() error { return nil }
func (idleMsg) Ack() error        { return nil }

// A worker stuck waiting on the server (here a Scope's finish that never
// returns, as a settlement without a deadline did) makes the runner report it,
// naming the runner, until it is released.
func TestStuckWorkerIsReported(t *testing.T) {
	release := make(chan struct{})
	r, err := New(Config{Name: "stage compile", Stream: "JOBS", Durables: []string{"compile"}, Concurrency: 2,
		Heartbeat: time.Hour, StuckAfter: 100 * time.Millisecond,
		Handler: func(context.Context, jetstream.Msg) error { return nil },
		Scope: func(ctx context.Context) (context.Context, func(error) error) {
			return ctx, func(err error) error { <-release; return err }
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.workCtx = context.Background()
	done := make(chan struct{})
	go func() { r.run(idleMsg{}, nil); close(done) }()

	deadline := time.Now().Add(10 * time.Second)
	for err := r.Stuck(); err == nil || !strings.Contains(err.Error(), "stage compile: 1 of 2 workers stuck"); err = r.Stuck() {
		if time.Now().After(deadline) {
			t.Fatalf("Stuck() = %v within 10s, want the stuck worker named", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("worker not done 10s after its release")
	}
	if err := r.Stuck(); err != nil {
		t.Fatalf("Stuck() = %v once the worker is done, want nil", err)
	}
}
