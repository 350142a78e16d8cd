package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/sheetpipe/sheetpipe/events"
)

// A stale change is a 409 that says so and carries the job's current revision,
// wrapped or decoded from a reply.
func TestStaleErrorClasses(t *testing.T) {
	stale := fmt.Errorf("edit: %w", &events.StaleError{JobID: "j", IfRevision: 3, Revision: 7})
	decoded := &events.ControlError{Code: events.CodeConflict, Message: "m", Revision: 7}
	plain := &events.ControlError{Code: events.CodeConflict, Message: "it is running"}
	for name, err := range map[string]error{"stale": stale, "decoded": decoded} {
		if !errors.Is(err, events.ErrStale) || !errors.Is(err, events.ErrConflict) || events.CodeOf(err) != events.CodeConflict || events.RevisionOf(err) != 7 {
			t.Errorf("%s: %v is not a 409 ErrStale at revision 7", name, err)
		}
	}
	if errors.Is(plain, events.ErrStale) || events.RevisionOf(plain) != 0 || !errors.Is(plain, events.ErrConflict) {
		t.Errorf("a 409 without a revision must be a conflict, not a stale change")
	}
}

// if_revision is optional on every change; 0, which no job has, is refused
// rather than read as "no check".
func TestIfRevisionValidation(t *testing.T) {
	id := "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"
	for _, body := range []string{`{"job_id":"` + id + `"}`, `{"job_id":"` + id + `","if_revision":12}`} {
		var c events.JobChange
		if err := events.DecodeControl([]byte(body), &c); err != nil || c.Validate() != nil {
			t.Errorf("%s: refused", body)
		}
	}
	for _, body := range []string{`{"job_id":"` + id + `","if_revision":0}`, `{"job_id":"` + id + `","if_revision":-1}`,
		`{"job_id":"` + id + `","if_revision":"12"}`, `{"job_id":"` + id + `","if_revision":1.5}`} {
		var c events.JobChange
		err := events.DecodeControl([]byte(body), &c)
		if err == nil {
			err = c.Validate()
		}
		if events.CodeOf(err) != events.CodeBadRequest {
			t.Errorf("%s: %v, want 400", body, err)
		}
	}
	e := events.LatexEdit{JobID: id, Latex: "x", IfRevision: events.Revision(0)}
	r := events.Refinement{JobID: id, Instruction: "x", IfRevision: events.Revision(0)}
	if events.CodeOf(e.Validate()) != 400 || events.CodeOf(r.Validate()) != 400 {
		t.Errorf("if_revision 0 on an edit or refinement was accepted")
	}
	data, _ := json.Marshal(events.LatexEdit{JobID: id, Latex: "x"})
	if string(data) != `{"job_id":"`+id+`","latex":"x"}` {
		t.Errorf("an edit without if_revision encodes as %s", data)
	}
}
