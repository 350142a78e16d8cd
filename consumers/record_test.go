package consumers_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// An LLM answer that arrives while the conversations stream does not answer (a
// cluster node lost with its leader; here the stream is gone for a second) is
// kept and recorded once the stream is back, within the lease: the job
// completes with one design call, never paying for the answer again.
func TestAnswerKeptUntilConversationsStreamAnswers(t *testing.T) {
	t.Parallel()
	var (
		e        *env
		once     sync.Once
		restored = make(chan error, 1)
	)
	design := func(fakellm.Request) fakellm.Reply {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.nats.JS.DeleteKeyValue(ctx, kvstore.BucketConversations); err != nil {
				t.Errorf("delete conversations bucket: %v", err)
			}
			go func() {
				time.Sleep(time.Second) // the outage
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				restored <- broker.Provision(ctx, e.nats.JS, broker.Resources{})
			}()
		})
		return fakellm.Reply{Content: "outline"}
	}
	e = newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": design,
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
		"meta":   metaReplies(testDescription, testTags),
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	e.waitStatus(id, events.StatusCompleted)
	if err := <-restored; err != nil {
		t.Fatalf("restore conversations bucket: %v", err)
	}
	if n := e.llm.CallsFor("design"); n != 1 {
		t.Fatalf("%d design calls, want 1: the answer was dropped and paid for again", n)
	}
	conv, _, err := e.store.Conversation(e.ctx, id)
	if err != nil {
		t.Fatalf("conversation: %v", err)
	}
	if m, ok := (&events.Job{Seq: 1}).RecordedAnswer(conv, events.StageDesign); !ok || m.Content != "outline" {
		t.Fatalf("design answer not recorded: %+v", conv.Messages)
	}
	for _, ev := range e.eventsOf(id) {
		if ev.Status == events.StatusError {
			t.Fatalf("the job went through error:%s", describe(e.eventsOf(id)))
		}
	}
}
