package api_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// TestControl runs each control operation to its outcome over both transports,
// on one pipeline; every subtest has its own jobs.
func TestControl(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	for _, tr := range f.transports() {
		t.Run(tr.name(), func(t *testing.T) {
			t.Run("submit replies once the job is stored", func(t *testing.T) { t.Parallel(); testSubmit(t, f, tr) })
			t.Run("abort cancels the LLM call", func(t *testing.T) { t.Parallel(); testAbort(t, f, tr) })
			t.Run("manual edit", func(t *testing.T) { t.Parallel(); testManualEdit(t, f, tr) })
			t.Run("refine", func(t *testing.T) { t.Parallel(); testRefine(t, f, tr) })
			t.Run("retry from waiting_manual", func(t *testing.T) { t.Parallel(); testRetry(t, f, tr) })
			t.Run("list", func(t *testing.T) { t.Parallel(); testList(t, f, tr) })
		})
	}
}

func testSubmit(t *testing.T, f *fixture, tr transport) {
	user := "submitter-" + tr.name()
	req := map[string]any{"user_id": user, "prompt": "a fractions worksheet for grade 5"}
	r := tr.do(t, call{op: events.OpSubmit, fields: req})
	id := decode[events.SubmitReply](t, r).JobID
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("submit replied job_id %q: %v", id, err)
	}
	if tr.name() == "http" && (r.code != http.StatusAccepted || r.header.Get("Location") != "/jobs/"+id) {
		t.Fatalf("POST /jobs: %d, Location %q", r.code, r.header.Get("Location"))
	}
	v := get(t, tr, id)
	if v.ID != id || v.UserID != user || v.Revision == 0 || (v.Status != events.StatusPending && v.Status != events.StatusRunning) {
		t.Fatalf("get right after submit: %+v", v)
	}

	f.waitStatus(t, id, 0, events.StatusCompleted)
	// Description and tags are written beside the pipeline, without an event: wait
	// for them before taking the revision a resubmit must not change.
	waitUntil(t, "the job's description", func() bool { return get(t, tr, id).Description != "" })
	v = get(t, tr, id)
	if v.Status != events.StatusCompleted || v.CurrentStep != events.StepDone || v.PDFURL != "/jobs/"+id+"/pdf" || v.Latex != strings.TrimSpace(goodLatex) {
		t.Fatalf("completed job: status %s step %s pdf_url %q", v.Status, v.CurrentStep, v.PDFURL)
	}

	// The same request again, under the job id it got (in any case), is accepted
	// and creates nothing new.
	req["job_id"] = strings.ToUpper(id)
	if again := decode[events.SubmitReply](t, tr.do(t, call{op: events.OpSubmit, fields: req})); again.JobID != id {
		t.Fatalf("resubmit replied job_id %s, want %s", again.JobID, id)
	}
	f.waitIdle(t)
	if w := get(t, tr, id); w.Revision != v.Revision || w.Status != events.StatusCompleted {
		t.Fatalf("resubmit changed the job: revision %d -> %d, status %s", v.Revision, w.Revision, w.Status)
	}
}

func testAbort(t *testing.T, f *fixture, tr transport) {
	tag := "abort-" + tr.name()
	id := submit(t, tr, "u", "fractions "+markSlow+" "+tag)
	f.waitFor(t, id, 0, "running design", func(ev events.StatusEvent) bool {
		return ev.Status == events.StatusRunning && ev.Step == events.StepDesign
	})
	waitUntil(t, "the design call reaches the LLM", func() bool { return f.callsWith("design", tag) == 1 })

	v := decode[events.Versioned](t, tr.do(t, call{op: events.OpAbort, id: id}))
	if v.Status != events.StatusAborted || v.Message != "Aborted by the user" {
		t.Fatalf("abort replied status %s, message %q", v.Status, v.Message)
	}
	waitUntil(t, "the LLM sees its client go away", func() bool { return f.proxy.cancelledWith(tag) })
	f.waitStatus(t, id, 0, events.StatusAborted)
	f.waitIdle(t)
	evs := f.eventsOf(id)
	if last := evs[len(evs)-1]; last.Status != events.StatusAborted {
		t.Fatalf("an event follows the abort:%s", describe(evs))
	}
	if n := f.callsWith("", tag); n != 1 {
		t.Fatalf("%d LLM calls for the aborted job, want 1", n)
	}
	if g := get(t, tr, id); g.Status != events.StatusAborted || g.Revision != evs[len(evs)-1].Revision {
		t.Fatalf("aborted job now %s at revision %d:%s", g.Status, g.Revision, describe(evs))
	}
}

func testManualEdit(t *testing.T, f *fixture, tr transport) {
	tag := "edit-" + tr.name()
	id := submit(t, tr, "u", "fractions "+tag)
	f.waitStatus(t, id, 0, events.StatusCompleted)
	rev := get(t, tr, id).Revision

	v := decode[events.Versioned](t, tr.do(t, call{op: events.OpLatex, id: id, fields: map[string]any{"latex": brokenLatex}}))
	if v.Latex != brokenLatex || v.Revision <= rev {
		t.Fatalf("edit replied revision %d (was %d), latex %q", v.Revision, rev, v.Latex)
	}
	evs := f.waitStatus(t, id, rev, events.StatusWaitingManual)
	if last := evs[len(evs)-1]; last.Error == nil || last.Error.Line != 4 || last.Error.Message == "" || last.Error.Snippet == "" {
		t.Fatalf("waiting_manual event without the compile error: %+v", last)
	}
	g := get(t, tr, id)
	if g.Status != events.StatusWaitingManual || g.ErrorLog == nil || g.ErrorLog.Line != 4 || g.ErrorMessage == "" {
		t.Fatalf("job after a bad edit: status %s, error %q, log %+v", g.Status, g.ErrorMessage, g.ErrorLog)
	}
	if n := f.callsWith("fix", tag); n != 0 {
		t.Fatalf("a hand-edited document went to the LLM for a fix (%d calls)", n)
	}

	good := call{op: events.OpLatex, id: id, fields: map[string]any{"latex": editedLatex}}
	if tr.name() == "http" {
		good = call{op: events.OpLatex, id: id, raw: []byte(editedLatex), ctype: "text/plain; charset=utf-8"}
	}
	decode[events.Versioned](t, tr.do(t, good))
	f.waitStatus(t, id, g.Revision, events.StatusCompleted)
	if g := get(t, tr, id); g.Latex != editedLatex || g.ErrorLog != nil || g.ErrorMessage != "" {
		t.Fatalf("job after a good edit: latex %q, error %q", g.Latex, g.ErrorMessage)
	}
	if pdf := f.pdf(t, id); !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("pdf after the edit starts with %q", pdf[:min(len(pdf), 8)])
	}
}

func testRefine(t *testing.T, f *fixture, tr transport) {
	tag := "refine-" + tr.name()
	id := submit(t, tr, "u", "fractions "+tag)
	f.waitStatus(t, id, 0, events.StatusCompleted)
	before := f.pdf(t, id)
	rev := get(t, tr, id).Revision

	instruction := "use decimals instead of fractions (" + tag + ")"
	v := decode[events.Versioned](t, tr.do(t, call{op: events.OpRefine, id: id, fields: map[string]any{"instruction": instruction}}))
	if v.Revision <= rev {
		t.Fatalf("refine replied %s at revision %d (was %d)", v.Status, v.Revision, rev)
	}
	f.waitStatus(t, id, rev, events.StatusCompleted)
	after := f.pdf(t, id)
	if bytes.Equal(before, after) {
		t.Fatal("the refined job serves the same PDF")
	}
	g := get(t, tr, id)
	if g.Latex != strings.TrimSpace(refinedLatex) {
		t.Fatalf("refined job's latex: %q", g.Latex)
	}
	if n := f.callsWith("refine", instruction); n != 1 {
		t.Fatalf("%d refine calls with the instruction, want 1", n)
	}
	conv, _, err := f.store.Conversation(f.ctx, g.ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	var turns []string
	for _, m := range conv.Messages {
		turns = append(turns, m.Role+": "+m.Content)
	}
	dialogue := strings.Join(turns, "\n")
	for _, want := range []string{"fractions " + tag, `\section*{Fractions}`, instruction, revisedRequest, `\section*{Decimals}`} {
		if !strings.Contains(dialogue, want) {
			t.Fatalf("conversation lacks %q:\n%s", want, dialogue)
		}
	}
}

func testRetry(t *testing.T, f *fixture, tr transport) {
	tag := "retry-" + tr.name()
	id := submit(t, tr, "u", "fractions "+markRefuseOnce+" "+tag)
	evs := f.waitStatus(t, id, 0, events.StatusWaitingManual)
	if last := evs[len(evs)-1]; last.Error == nil || last.Step != events.StepDesign {
		t.Fatalf("refused job: %+v", last)
	}
	rev := get(t, tr, id).Revision
	v := decode[events.Versioned](t, tr.do(t, call{op: events.OpRetry, id: id}))
	if v.Revision <= rev || v.Status == events.StatusWaitingManual {
		t.Fatalf("retry replied %s at revision %d (was %d)", v.Status, v.Revision, rev)
	}
	f.waitStatus(t, id, rev, events.StatusCompleted)
	if n := f.callsWith("design", tag); n != 2 {
		t.Fatalf("%d design calls, want 2 (refused, then retried)", n)
	}
}

func testList(t *testing.T, f *fixture, tr transport) {
	user := "lister-" + tr.name()
	var ids []string
	for i := range 3 {
		ids = append(ids, submit(t, tr, user, "worksheet "+string(rune('A'+i))))
	}
	for _, id := range ids {
		f.waitStatus(t, id, 0, events.StatusCompleted)
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)

	list := func(fields map[string]any) (events.ListReply, []byte) {
		r := tr.do(t, call{op: events.OpList, fields: fields})
		return decode[events.ListReply](t, r), r.body
	}
	jobIDs := func(l events.ListReply) []string {
		var out []string
		for _, j := range l.Jobs {
			out = append(out, j.JobID)
		}
		return out
	}
	if l, _ := list(map[string]any{"user_id": user}); !slices.Equal(jobIDs(l), newestFirst) || l.Truncated {
		t.Fatalf("list by user: %v truncated %v, want %v", jobIDs(l), l.Truncated, newestFirst)
	}
	if l, _ := list(map[string]any{"user_id": user, "limit": 2}); !slices.Equal(jobIDs(l), newestFirst[:2]) || !l.Truncated {
		t.Fatalf("list by user, limit 2: %v truncated %v", jobIDs(l), l.Truncated)
	}
	l, _ := list(map[string]any{"user_id": user, "status": "completed"})
	if !slices.Equal(jobIDs(l), newestFirst) {
		t.Fatalf("list completed by user: %v", jobIDs(l))
	}
	for _, j := range l.Jobs {
		if j.UserID != user || j.Status != events.StatusCompleted || j.PDFURL == "" || j.Revision == 0 {
			t.Fatalf("summary %+v", j)
		}
	}
	if l, body := list(map[string]any{"user_id": user, "status": "aborted"}); len(l.Jobs) != 0 || !bytes.Contains(body, []byte(`"jobs":[]`)) {
		t.Fatalf("list aborted by user: %s", body)
	}
	if l, _ := list(nil); len(l.Jobs) < len(ids) {
		t.Fatalf("list without a filter: %d jobs", len(l.Jobs))
	}
}

// callsWith counts the LLM calls for step ("" for any) with s in a message.
func (f *fixture) callsWith(step, s string) int {
	n := 0
	for _, c := range f.llm.Calls() {
		if step != "" && c.Step != step {
			continue
		}
		for _, m := range c.Messages {
			if strings.Contains(m.Content, s) {
				n++
				break
			}
		}
	}
	return n
}

// pdf fetches the job's PDF over HTTP and checks how it is served.
func (f *fixture) pdf(t *testing.T, id string) []byte {
	t.Helper()
	r := httpTransport{base: f.http.URL}.request(t, http.MethodGet, "/jobs/"+id+"/pdf", "", nil)
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/pdf" ||
		r.header.Get("Content-Disposition") != `attachment; filename="`+id+`.pdf"` {
		t.Fatalf("GET pdf: %d, Content-Type %q, Content-Disposition %q", r.code, r.header.Get("Content-Type"), r.header.Get("Content-Disposition"))
	}
	return r.body
}

// waitUntil polls cond until it holds, for at most waitLimit.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
