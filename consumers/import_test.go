package consumers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/importer"
	"github.com/sheetpipe/sheetpipe/internal/oldstore"
)

// importEnv is an env with a generated old store and a pipeline that runs no
// stage yet, so that what the import wrote can be read before any stage acts.
type importEnv struct {
	*env
	old   *oldstore.Store
	read  *importer.Store
	idle  *control.Plane
	start time.Time
}

func newImportEnv(t *testing.T, n int, opts ...envOption) *importEnv {
	t.Helper()
	e := &importEnv{env: newIdleEnv(t, broker.Resources{}, steps("a design", goodLatex, goodLatex), opts...)}
	dir := t.TempDir()
	var err error
	if e.old, err = oldstore.Generate(filepath.Join(dir, "pipeline"), filepath.Join(dir, "pdfs"), n); err != nil {
		t.Fatal(err)
	}
	if e.read, err = importer.Read(e.old.Dir, e.old.PDFDir); err != nil {
		t.Fatal(err)
	}
	if e.idle, err = e.newPlane(), error(nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// importAll sends every record read, in chunks, and tallies the outcomes.
func (e *importEnv) importAll(req events.ImportRequest) (map[string]int, []events.ImportResult) {
	e.t.Helper()
	counts := map[string]int{}
	var all []events.ImportResult
	for chunk := range slices.Chunk(e.read.Records, 50) {
		req.Records = req.Records[:0]
		for _, r := range chunk {
			req.Records = append(req.Records, r.Load(1<<20))
		}
		reply, err := e.idle.Import(e.ctx, req)
		if err != nil {
			e.t.Fatalf("import: %v", err)
		}
		for _, res := range reply.Results {
			counts[res.Outcome]++
		}
		all = append(all, reply.Results...)
	}
	return counts, all
}

// revisions reads every job's revision.
func (e *importEnv) revisions() map[string]uint64 {
	e.t.Helper()
	revs := map[string]uint64{}
	err := e.store.EachJob(e.ctx, func(id string, _ *events.Job, rev uint64, err error) error {
		revs[id] = rev
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return revs
}

func (e *importEnv) eventCount() int {
	n := 0
	for _, id := range e.jobsWithEvents() {
		n += len(e.eventsOf(id))
	}
	return n
}

func finishedOld(status string) bool {
	return status == "completed" || status == "aborted" || status == "waiting_manual"
}

// TestImportOldStore imports a generated old store of 216 jobs (every status and
// step, three spellings, both layouts, conversations, PDFs present and absent,
// broken records): a dry run writes nothing; the import keeps every field (old
// and new compared value by value); each job publishes one event; a second run
// changes no job and stores no event (it publishes each job's event again, at
// its revision, which JOB_EVENTS drops as a duplicate); the resumed jobs then complete through the pipeline and the
// finished ones are left untouched.
func TestImportOldStore(t *testing.T) {
	t.Parallel()
	e := newImportEnv(t, 216)
	var refused []string
	for _, r := range e.read.Refused {
		refused = append(refused, r.Source)
	}
	if len(e.read.Records) != len(e.old.Jobs)+3 { // three broken jobs decode and are refused by sheetd
		t.Fatalf("read %d records, want %d", len(e.read.Records), len(e.old.Jobs)+3)
	}

	counts, _ := e.importAll(events.ImportRequest{DryRun: true})
	if len(e.revisions()) != 0 || e.eventCount() != 0 {
		t.Fatalf("dry run wrote %d jobs and %d events", len(e.revisions()), e.eventCount())
	}
	dry := counts

	counts, results := e.importAll(events.ImportRequest{})
	if !maps.Equal(counts, dry) {
		t.Fatalf("import did %v, dry run said %v", counts, dry)
	}
	var serverRefused []string
	for _, res := range results {
		if res.Outcome == events.ImportRefused {
			serverRefused = append(serverRefused, res.Reason)
			refused = append(refused, res.Source)
		}
	}
	slices.Sort(refused)
	slices.Sort(e.old.Broken)
	if !slices.Equal(refused, e.old.Broken) {
		t.Fatalf("refused %v, want the broken records %v", refused, e.old.Broken)
	}
	slices.Sort(serverRefused)
	want := []string{`id "job-42" is not a UUID`, "no user_id", `unknown status "exploded"`}
	if !slices.Equal(serverRefused, want) {
		t.Fatalf("refused %q, want %q", serverRefused, want)
	}
	resumed := e.checkImported(t)
	if counts[events.ImportResumed] != len(resumed) || counts[events.ImportImported] != len(e.old.Jobs)-len(resumed) {
		t.Fatalf("outcomes %v, want %d resumed of %d", counts, len(resumed), len(e.old.Jobs))
	}
	for _, j := range e.old.Jobs {
		evs := e.eventsOf(j.ID)
		if len(evs) != 1 || evs[0].Message != control.ImportedMessage {
			t.Fatalf("job %s (%s) published %s, want one %q event", j.ID, j.Status, describe(evs), control.ImportedMessage)
		}
	}

	before, stored := e.revisions(), e.streamMsgs(events.StreamEvents)
	counts, _ = e.importAll(events.ImportRequest{})
	if counts[events.ImportSkipped] != len(e.old.Jobs) || counts[events.ImportImported]+counts[events.ImportResumed] != 0 {
		t.Fatalf("second import did %v, want every job skipped", counts)
	}
	if after := e.revisions(); !maps.Equal(before, after) || e.streamMsgs(events.StreamEvents) != stored {
		t.Fatal("second import changed jobs or stored events")
	}
	// It re-published each job's event (an earlier run may have died before
	// it), at the same revision: the stream dropped them as duplicates.
	for _, j := range e.old.Jobs {
		evs := e.waitFor(j.ID, "event again", func(events.StatusEvent) bool { return len(e.eventsOf(j.ID)) >= 2 })
		if len(evs) != 2 || !reflect.DeepEqual(evs[1], evs[0]) {
			t.Fatalf("job %s (%s) published %s on the second run, want its event again", j.ID, j.Status, describe(evs))
		}
	}

	e.pipe = e.startPipeline()
	for _, id := range resumed {
		e.waitStatus(id, events.StatusCompleted)
	}
	after := e.revisions()
	for _, j := range e.old.Jobs {
		if !slices.Contains(resumed, j.ID) && after[j.ID] != before[j.ID] {
			t.Errorf("finished job %s (%s) was changed by the pipeline", j.ID, j.Status)
		}
	}
}

// checkImported compares every old job with the job and conversation stored,
// and returns the ids of the jobs handed to a stage.
func (e *importEnv) checkImported(t *testing.T) []string {
	t.Helper()
	var resumed []string
	for _, old := range e.old.Jobs {
		j := e.job(old.ID)
		where := fmt.Sprintf("job %s (%s/%s)", old.ID, old.Status, old.CurrentStep)
		check := func(field string, got, want any) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: %s is %v, want %v", where, field, got, want)
			}
		}
		check("user_id", j.UserID, old.UserID)
		check("prompt", j.Prompt, old.Prompt)
		check("design", j.Design, old.Design)
		check("latex", j.Latex, old.Latex)
		check("error_message", j.ErrorMessage, old.ErrorMessage)
		check("retry_count", j.RetryCount, old.RetryCount)
		check("max_retries", j.MaxRetries, old.MaxRetries)
		check("created_at", j.CreatedAt.Format(time.RFC3339Nano), old.CreatedAt.Format(time.RFC3339Nano))
		check("updated_at", j.UpdatedAt.Format(time.RFC3339Nano), old.UpdatedAt.Format(time.RFC3339Nano))
		check("imported.status", j.Imported.Status, old.Status)
		check("imported.step", j.Imported.Step, old.CurrentStep)
		check("imported.pdf_url", j.Imported.PDFURL, old.PDFURL)
		check("message", j.Message, control.ImportedMessage)
		if j.ImportedAt.IsZero() || time.Since(j.ImportedAt) > time.Minute {
			t.Errorf("%s: imported_at is %v", where, j.ImportedAt)
		}
		if (old.ErrorLog == nil) != (j.ErrorLog == nil) ||
			(old.ErrorLog != nil && (j.ErrorLog.Log != old.ErrorLog.Log || j.ErrorLog.Snippet != old.ErrorLog.Snippet || j.ErrorLog.Line != old.ErrorLog.Line)) {
			t.Errorf("%s: error_log is %+v, want %+v", where, j.ErrorLog, old.ErrorLog)
		}
		for k, v := range old.Extra {
			want, _ := json.Marshal(v)
			check("imported.extra."+k, j.Imported.Extra[k], string(want))
		}
		e.checkConversation(t, where, old, j)
		switch {
		case finishedOld(old.Status):
			check("status", j.Status, old.Status)
			check("current_step", j.CurrentStep, old.CurrentStep)
			check("stage", j.Stage, "")
			e.checkPDF(t, where, old, j)
		default:
			resumed = append(resumed, old.ID)
			wantStatus, wantStage := events.StatusPending, stageOf(old)
			if old.Status == "waiting_ai_fix" {
				wantStatus = events.StatusWaitingAIFix
			}
			check("status", j.Status, wantStatus)
			check("stage", j.Stage, wantStage)
		}
	}
	return resumed
}

func stageOf(old oldstore.Job) events.Stage {
	switch {
	case old.Status == "waiting_ai_fix":
		return events.StageFix
	case old.CurrentStep == "prompt":
		return events.StageDesign
	}
	return events.Stage(old.CurrentStep)
}

func (e *importEnv) checkConversation(t *testing.T, where string, old oldstore.Job, j *events.Job) {
	t.Helper()
	want, has := e.old.Conversations[old.ID]
	wantID := old.ConversationID
	if !has {
		wantID = old.ID
	}
	if j.ConversationID != wantID {
		t.Errorf("%s: conversation_id %s, want %s", where, j.ConversationID, wantID)
	}
	c, _, err := e.store.Conversation(e.ctx, j.ConversationID)
	if err != nil {
		t.Errorf("%s: conversation: %v", where, err)
		return
	}
	if c.JobID != old.ID || len(c.Messages) != len(want.Messages) {
		t.Errorf("%s: conversation of job %s with %d messages, want %d", where, c.JobID, len(c.Messages), len(want.Messages))
		return
	}
	for i, m := range want.Messages {
		got := c.Messages[i]
		if got.Role != m.Role || got.Content != m.Content || !got.Time.Equal(m.Timestamp) {
			t.Errorf("%s: message %d is %+v, want %+v", where, i, got, m)
		}
	}
}

func (e *importEnv) checkPDF(t *testing.T, where string, old oldstore.Job, j *events.Job) {
	t.Helper()
	want, has := e.old.PDFs[old.ID]
	switch {
	case has:
		if j.PDFURL != "/jobs/"+old.ID+"/pdf" || !bytes.Equal(e.pdf(old.ID), want) {
			t.Errorf("%s: pdf_url %q, or the PDF differs from the old one", where, j.PDFURL)
		}
	case old.Status == "completed":
		if j.PDFURL != "" || !strings.HasPrefix(j.Imported.PDF, "missing: ") {
			t.Errorf("%s: missing PDF gave pdf_url %q, imported.pdf %q", where, j.PDFURL, j.Imported.PDF)
		}
	}
}

// TestJanitorCountsImportedJobFromItsImport: an imported job keeps its months-old
// updated_at, and the janitor counts its age from imported_at, so it is not
// deleted the moment it is imported; a job as old that was not imported is.
func TestJanitorCountsImportedJobFromItsImport(t *testing.T) {
	t.Parallel()
	e := newImportEnv(t, 18, retain(30*day))
	if _, results := e.importAll(events.ImportRequest{}); len(results) == 0 {
		t.Fatal("nothing imported")
	}
	var finished []string
	for _, j := range e.old.Jobs {
		if finishedOld(j.Status) {
			finished = append(finished, j.ID)
			if age := time.Since(e.job(j.ID).UpdatedAt); age < 60*day {
				t.Fatalf("job %s updated %s ago: the test needs an old updated_at", j.ID, age)
			}
		}
	}
	aged := &events.Job{ID: "00000000-0000-4000-8000-000000000001", Status: events.StatusCompleted, CurrentStep: events.StepDone}
	e.seedAged(aged, time.Now().Add(-60*day))
	jobs, _, _, err := e.janitor().Pass(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if jobs != 1 {
		t.Fatalf("janitor deleted %d jobs, want only the one not imported", jobs)
	}
	for _, id := range finished {
		e.job(id) // fails the test if deleted
	}
}

// TestImportOverwriteOnlyUntouchedImports: --overwrite replaces an import nothing
// changed since, and never a job a stage or user wrote after its import.
func TestImportOverwriteOnlyUntouchedImports(t *testing.T) {
	t.Parallel()
	e := newImportEnv(t, 18)
	e.importAll(events.ImportRequest{})
	var done, touched string
	for _, j := range e.old.Jobs {
		switch {
		case j.Status == "completed" && done == "":
			done = j.ID
		case j.Status == "waiting_manual" && touched == "":
			touched = j.ID
		}
	}
	if _, err := e.idle.Abort(e.ctx, events.JobChange{JobID: touched}); err != nil {
		t.Fatal(err)
	}
	before := e.revisions()
	counts, results := e.importAll(events.ImportRequest{Overwrite: true})
	byID := map[string]events.ImportResult{}
	for _, r := range results {
		byID[r.JobID] = r
	}
	if r := byID[done]; r.Outcome != events.ImportImported || !r.Overwritten {
		t.Fatalf("untouched completed import: %+v, want imported again (overwritten)", r)
	}
	if r := byID[touched]; r.Outcome != events.ImportSkipped || !strings.Contains(r.Reason, "changed since") {
		t.Fatalf("aborted import: %+v, want skipped as changed since its import", r)
	}
	after := e.revisions()
	if after[touched] != before[touched] || e.job(touched).Status != events.StatusAborted {
		t.Fatal("a job changed after its import was overwritten")
	}
	if after[done] == before[done] || counts[events.ImportSkipped] == 0 {
		t.Fatalf("overwrite did %v; completed job revision %d -> %d", counts, before[done], after[done])
	}
}

// oldRecord is a small old record of a completed job with a conversation.
func oldRecord(id, convID string) events.ImportRecord {
	at := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	return events.ImportRecord{Source: "test",
		Job: events.OldJob{ID: id, UserID: "ada", Status: events.StatusCompleted, CurrentStep: events.StepDone,
			Prompt: "fractions", Latex: goodLatex, ConversationID: convID, MaxRetries: 3, CreatedAt: at, UpdatedAt: at},
		Conversation: &events.OldConversation{ID: convID, JobID: id, CreatedAt: at, UpdatedAt: at,
			Messages: []events.OldMessage{{Role: "user", Content: "fractions"}, {Role: "assistant", Content: "a design"}}}}
}

// TestImportCrashAndHijack: a run cut short after the conversation is completed
// by the next one; a record never takes over what a sheetpipe job owns (its id,
// even with --overwrite, or its conversation id).
func TestImportCrashAndHijack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("a design", goodLatex, goodLatex), quietSweeper)
	imp := func(req events.ImportRequest) events.ImportResult {
		t.Helper()
		reply, err := e.plane.Import(e.ctx, req)
		if err != nil || len(reply.Results) != 1 {
			t.Fatalf("import: %v %+v", err, reply)
		}
		return reply.Results[0]
	}

	// Cut short: only the conversation (one message of two) was written.
	half := oldRecord("10000000-0000-4000-8000-000000000001", "conv-1")
	partial := &events.Conversation{ID: "conv-1", JobID: half.Job.ID, Messages: []events.Message{{Role: "user", Content: "fractions"}}}
	if _, err := e.store.PutImportedConversation(e.ctx, partial, 0); err != nil {
		t.Fatal(err)
	}
	if r := imp(events.ImportRequest{Records: []events.ImportRecord{half}}); r.Outcome != events.ImportImported {
		t.Fatalf("re-run after a crash: %+v", r)
	}
	if c, _, err := e.store.Conversation(e.ctx, "conv-1"); err != nil || len(c.Messages) != 2 {
		t.Fatalf("conversation after the re-run: %+v %v", c, err)
	}

	// A live sheetpipe job: its id is never overwritten, its conversation never taken.
	live := uuid.NewString()
	e.submit(events.JobRequest{JobID: live, UserID: "bob", Prompt: "geometry"})
	e.waitStatus(live, events.StatusCompleted)
	_, rev, _ := e.store.Get(e.ctx, live)
	r := imp(events.ImportRequest{Overwrite: true, Records: []events.ImportRecord{oldRecord(live, "conv-2")}})
	if r.Outcome != events.ImportSkipped || !strings.Contains(r.Reason, "was not imported") {
		t.Fatalf("import over a live job: %+v", r)
	}
	other := uuid.NewString()
	r = imp(events.ImportRequest{Records: []events.ImportRecord{oldRecord(other, live)}})
	if r.Outcome != events.ImportRefused || !strings.Contains(r.Reason, "is taken by job "+live) {
		t.Fatalf("import claiming a live job's conversation: %+v", r)
	}
	j, rev2, _ := e.store.Get(e.ctx, live)
	c, _, _ := e.store.Conversation(e.ctx, live)
	if rev2 != rev || j.UserID != "bob" || c.JobID != live || c.Messages[0].Content == "fractions" {
		t.Fatal("the live job or its conversation was changed by an import")
	}
	if _, _, err := e.store.Get(e.ctx, other); err == nil {
		t.Fatal("the refused record's job was stored")
	}
}

// TestImportedValuesImitateNothing: an old status and old fields holding
// `"status":"completed"` do not make a resumed job look finished to the byte
// search that skips finished jobs (the sweeper's scan).
func TestImportedValuesImitateNothing(t *testing.T) {
	t.Parallel()
	e := newIdleEnv(t, broker.Resources{}, steps("a design", goodLatex, goodLatex))
	p, err := e.newPlane(), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := oldRecord(uuid.NewString(), "conv-3")
	rec.PDFNote = "no file"
	rec.Job.Extra = map[string]json.RawMessage{"History": json.RawMessage(`{"status":"completed"}`)}
	reply, err := p.Import(e.ctx, events.ImportRequest{RecompileMissing: true, Records: []events.ImportRecord{rec}})
	if err != nil || reply.Results[0].Outcome != events.ImportResumed {
		t.Fatalf("import: %v %+v", err, reply)
	}
	seen := false
	err = e.store.EachUnfinishedJob(e.ctx, func(id string, _ *events.Job, _ uint64, _ error) error {
		seen = seen || id == rec.Job.ID
		return nil
	})
	if err != nil || !seen {
		t.Fatalf("the resumed job was taken for a finished one (%v)", err)
	}
}
