package main

import (
	"bytes"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// TestKilledWorkerJobCompletesOnce kills a sheetd with SIGKILL while its design
// call is in flight. The job lives in an external NATS server shared by a second
// sheetd, which takes it over once the dead worker's ticket and lease expire: the
// job completes exactly once and no later stage runs twice.
func TestKilledWorkerJobCompletesOnce(t *testing.T) {
	srv := testnats.Start(t)
	llm := fakellm.New(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline from the dead worker", Delay: time.Minute},
			fakellm.Reply{Content: "outline"}),
		"latex": fakellm.Script(fakellm.Reply{Content: testLatex}),
	}))
	env := func() []string {
		return []string{
			"NATS_URL=" + srv.ClientURL(),
			"SHEETPIPE_HTTP_ADDR=" + testnats.FreeAddr(t),
			"OPENAI_BASE_URL=" + llm.URL,
			"OPENAI_API_KEY=test",
			"SHEETPIPE_ACK_WAIT=3s",
			"SHEETPIPE_LEASE_TTL=3s",
			"SHEETPIPE_RETRY_BASE=50ms",
		}
	}
	startReady := func(name string) *process {
		e := env()
		p := start(t, name, e)
		p.waitReady("http://" + e[1][len("SHEETPIPE_HTTP_ADDR="):] + "/readyz")
		return p
	}
	victim := startReady("victim")

	ctx := testContext(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, ctx: ctx, nc: nc, js: js}
	id := c.submit(testPrompt)
	waitCalls(t, llm, "design", 1, 60*time.Second)

	if err := syscall.Kill(-victim.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill victim: %v", err)
	}
	if code := victim.wait(10 * time.Second); code != -1 {
		t.Fatalf("victim exit code %d, want -1 (killed)", code)
	}
	killedAt := time.Now()

	rescuer := startReady("rescuer")
	job := c.waitCompleted(id, rescuer)
	t.Logf("job completed %s after the worker was killed", time.Since(killedAt).Round(100*time.Millisecond))
	if job.Design != "outline" {
		t.Fatalf("design %q: the dead worker's call never answered, so only the rescuer's answer may be used", job.Design)
	}
	if !bytes.HasPrefix(c.pdf(id), []byte("%PDF")) {
		t.Fatal("pdf does not start with %PDF")
	}
	evs, completed := c.completedEvents(id)
	if completed != 1 {
		t.Fatalf("%d completed events, want 1:%s", completed, describe(evs))
	}
	if d, l := llm.CallsFor("design"), llm.CallsFor("latex"); d != 2 || l != 1 {
		t.Fatalf("design calls %d (want 2: killed + rescued), latex calls %d (want 1)", d, l)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Revision <= evs[i-1].Revision {
			t.Fatalf("events out of revision order:%s", describe(evs))
		}
	}
	if evs[0].Status != events.StatusPending || evs[len(evs)-1].Status != events.StatusCompleted {
		t.Fatalf("event sequence:%s", describe(evs))
	}
}
