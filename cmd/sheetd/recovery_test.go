package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
)

// TestRecoveryTimeAfterSIGKILL measures how long a job waits after its worker
// dies: a standby sheetd is already running when the worker holding the job's
// design ticket is killed with SIGKILL in the middle of the LLM call. The standby
// takes the job over once the dead worker's ticket comes back (AckWait after its
// last heartbeat) and its lease has lapsed (LEASE_TTL after its last renewal); the
// time from the kill to the standby's running event is logged for two settings.
// The job completes once; only the killed call is asked for again.
func TestRecoveryTimeAfterSIGKILL(t *testing.T) {
	sheetdBinary(t)
	for _, ackWait := range []string{"2s", "5s"} {
		t.Run("ack wait and lease "+ackWait, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			srv := testnats.Start(t)
			d := &deployment{t: t, natsURL: srv.ClientURL(),
				env: []string{"SHEETPIPE_ACK_WAIT=" + ackWait, "SHEETPIPE_LEASE_TTL=" + ackWait, "SHEETPIPE_SWEEP_INTERVAL=1s"},
				llm: fakellm.New(t, fakellm.ByStep(map[string]fakellm.Handler{
					"design": fakellm.Script(fakellm.Reply{Content: "never answered", Delay: time.Minute},
						fakellm.Reply{Content: crashDesign}),
					"latex": fakellm.Script(fakellm.Reply{Content: testLatex}),
				}))}
			victim := d.startWorker("victim")
			c := dial(t, ctx, srv.ClientURL())
			id := c.submit(testPrompt)
			waitCalls(t, d.llm, "design", 1, 30*time.Second)
			standby := d.startWorker("standby")

			if err := syscall.Kill(-victim.cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			victim.wait(10 * time.Second)
			killed := time.Now()
			c.waitCompleted(id, standby.process)
			done := time.Since(killed)
			evs, completed := c.completedEvents(id)
			h := checkHistory(t, id, evs)
			if completed != 1 || h.count(events.StatusCompleted) != 1 {
				t.Errorf("%d completed events, want 1:%s", completed, describe(evs))
			}
			for _, ev := range h {
				if ev.Status == events.StatusRunning && ev.Time.After(killed) {
					t.Logf("SIGKILL to the standby's running event: %s; to completed: %s",
						ev.Time.Sub(killed).Round(10*time.Millisecond), done.Round(10*time.Millisecond))
					break
				}
			}
			if dc, lc := d.llm.CallsFor("design"), d.llm.CallsFor("latex"); dc != 2 || lc != 1 {
				t.Errorf("LLM calls design %d (want 2: killed and redone), latex %d (want 1)", dc, lc)
			}
			if job, err := c.job(ctx, id); err != nil || job.Design != crashDesign {
				t.Errorf("design %v (err %v), want the standby's answer", job.Design, err)
			}
		})
	}
}

// TestSweeperRecoversJobWhoseTicketIsGone kills a sheetd right after it claimed a
// job (failpoint design.after-claim) and then removes the job's design ticket from
// JOBS, as if it had been lost: no redelivery will ever move the job. The sweeper
// of a fresh sheetd hands it back to design under a new hand-off once its lease
// has been expired for SHEETPIPE_SWEEP_GRACE (2 × AckWait by default); the job
// completes once. The time from the death to the recovery is logged.
func TestSweeperRecoversJobWhoseTicketIsGone(t *testing.T) {
	ctx := testContext(t)
	srv := testnats.Start(t)
	d := &deployment{t: t, natsURL: srv.ClientURL(), env: fastRecovery,
		llm: fakellm.New(t, fakellm.ByStep(map[string]fakellm.Handler{
			"design": fakellm.Script(fakellm.Reply{Content: crashDesign}),
			"latex":  fakellm.Script(fakellm.Reply{Content: testLatex}),
		}))}
	victim := d.startWorker("victim", "SHEETPIPE_FAILPOINTS=design.after-claim=exit")
	c := dial(t, ctx, srv.ClientURL())
	id := c.submit(testPrompt)
	if code := victim.wait(60 * time.Second); code != 3 {
		t.Fatalf("victim exited %d, want 3 (failpoint)", code)
	}
	died := time.Now()
	stream, err := c.js.Stream(ctx, events.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(events.SubjectDesign)); err != nil {
		t.Fatalf("remove the design ticket: %v", err)
	}
	if len(c.tickets()) != 0 {
		t.Fatalf("tickets left in JOBS: %v", c.tickets())
	}

	rescuer := d.startWorker("rescuer")
	c.waitCompleted(id, rescuer.process)
	evs, completed := c.completedEvents(id)
	h := checkHistory(t, id, evs)
	recovered := 0
	for _, ev := range h {
		if ev.Message == "Recovered: worker lease expired" {
			recovered++
			t.Logf("recovered by the sweeper %s after the death (lease 2s, grace 4s, sweep every 1s)",
				ev.Time.Sub(died).Round(10*time.Millisecond))
		}
	}
	if recovered != 1 || completed != 1 || h.count(events.StatusCompleted) != 1 {
		t.Errorf("%d recoveries, %d completed events, want 1 each:%s", recovered, completed, describe(evs))
	}
	if dc, lc := d.llm.CallsFor("design"), d.llm.CallsFor("latex"); dc != 1 || lc != 1 {
		t.Errorf("LLM calls design %d, latex %d, want 1 each", dc, lc)
	}
}
