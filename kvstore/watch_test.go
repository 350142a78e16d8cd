package kvstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// heldIn must agree with decoding the job, whatever text the job carries.
func TestHeldInAgreesWithDecoding(t *testing.T) {
	const owner = "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"
	running := []byte(`"status":"running"`)
	leased := []byte(`"owner":"` + owner + `"`)
	lease := &events.Lease{Owner: owner, ExpiresAt: time.Now()}
	other := &events.Lease{Owner: "someone-else", ExpiresAt: time.Now()}
	imitation := `"status":"running","owner":"` + owner + `"`
	cases := []events.Job{
		{Status: events.StatusRunning, Lease: lease},
		{Status: events.StatusRunning, Lease: other},
		{Status: events.StatusRunning},
		{Status: events.StatusAborted, Lease: lease},
		{Status: events.StatusPending},
		{Status: events.StatusAborted, Design: imitation, Latex: imitation, Message: imitation},
		{Status: events.StatusRunning, Lease: other, Prompt: imitation, Tags: []string{imitation}},
	}
	for i, j := range cases {
		data, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		want := j.Status == events.StatusRunning && j.Lease != nil && j.Lease.Owner == owner
		if got := heldIn(data, running, leased); got != want {
			t.Errorf("case %d: heldIn = %v, decoding says %v: %s", i, got, want, data)
		}
	}
}

// finishedValue must agree with decoding, whatever text the job carries.
func TestFinishedValueAgreesWithDecoding(t *testing.T) {
	imitation := `"status":"completed","status":"aborted","status":"waiting_manual"`
	for _, st := range []events.Status{events.StatusPending, events.StatusRunning, events.StatusError,
		events.StatusWaitingAIFix, events.StatusCompleted, events.StatusAborted, events.StatusWaitingManual} {
		data, err := json.Marshal(events.Job{Status: st, Prompt: imitation, Design: imitation, Latex: imitation,
			Message: imitation, ErrorLog: &events.ErrorLog{Log: imitation, Snippet: imitation}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := finishedValue(data), events.FinishedStatus(st); got != want {
			t.Errorf("status %s: finishedValue = %v, want %v", st, got, want)
		}
	}
}
