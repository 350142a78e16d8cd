package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
)

// importPlan is an old record mapped onto sheetpipe: the job and conversation
// to store, the PDF to store (nil: none) and a note on what could not be kept
// as it was.
type importPlan struct {
	job  *events.Job
	conv *events.Conversation
	pdf  []byte
	note string
}

// maxImportUserID bounds an imported user_id as a request's.
const maxImportUserID = 128

// planImport checks an old record and maps it: finished jobs (completed,
// aborted, waiting_manual) are kept as they are; pending, error and running
// jobs become pending at their step, handed to its stage; waiting_ai_fix goes
// to the fix stage. A completed job takes its PDF when the record has one,
// else, with recompile, goes to the compile stage to rebuild it from its LaTeX.
// A record that breaks a rule is refused with events.ErrInvalid.
func (p *Plane) planImport(rec *events.ImportRecord, recompile bool, now time.Time) (*importPlan, error) {
	old := &rec.Job
	id, err := events.JobIDOf(old.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: id %q is not a UUID", events.ErrInvalid, old.ID)
	}
	if err := checkOldJob(old); err != nil {
		return nil, err
	}
	j := &events.Job{
		ID: id, UserID: old.UserID, Status: old.Status, CurrentStep: old.CurrentStep,
		Prompt: old.Prompt, Mode: events.ModeAuto, Design: old.Design, Latex: old.Latex,
		ErrorMessage: old.ErrorMessage, RetryCount: old.RetryCount, MaxRetries: old.MaxRetries,
		CreatedAt: old.CreatedAt.UTC(), UpdatedAt: old.UpdatedAt.UTC(), ImportedAt: now,
		Message: ImportedMessage,
		Imported: &events.Imported{Status: old.Status, Step: old.CurrentStep, PDFURL: old.PDFURL,
			Extra: jsonTexts(old.Extra)},
	}
	if old.ErrorLog != nil {
		j.ErrorLog = &events.ErrorLog{Log: old.ErrorLog.Log, Snippet: old.ErrorLog.Snippet, Line: old.ErrorLog.Line}
	}
	var missing []string
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
		missing = append(missing, "created_at")
	}
	if j.UpdatedAt.IsZero() {
		j.UpdatedAt = j.CreatedAt
		missing = append(missing, "updated_at")
	}
	plan := &importPlan{job: j}
	if plan.conv, err = importConversation(j, old, rec.Conversation); err != nil {
		return nil, err
	}
	var notes []string
	if len(missing) > 0 {
		notes = append(notes, "no "+strings.Join(missing, " or ")+" in the old store: the import time is kept instead")
	}
	if n := p.mapState(j, rec, recompile, plan); n != "" {
		notes = append(notes, n)
	}
	plan.note = strings.Join(notes, "; ")
	return plan, nil
}

// checkOldJob checks the fields of an old job that sheetpipe relies on.
func checkOldJob(old *events.OldJob) error {
	user := strings.TrimSpace(old.UserID)
	switch {
	case user == "":
		return fmt.Errorf("%w: no user_id", events.ErrInvalid)
	case utf8.RuneCountInString(old.UserID) > maxImportUserID:
		return fmt.Errorf("%w: user_id is longer than %d characters", events.ErrInvalid, maxImportUserID)
	case !knownStatus(old.Status):
		return fmt.Errorf("%w: unknown status %q", events.ErrInvalid, old.Status)
	case !knownStep(old.CurrentStep):
		return fmt.Errorf("%w: unknown current_step %q", events.ErrInvalid, old.CurrentStep)
	case old.RetryCount < 0 || old.MaxRetries < 0:
		return fmt.Errorf("%w: negative retry_count or max_retries", events.ErrInvalid)
	}
	return nil
}

func knownStatus(s events.Status) bool {
	switch s {
	case events.StatusPending, events.StatusRunning, events.StatusError, events.StatusWaitingManual,
		events.StatusWaitingAIFix, events.StatusCompleted, events.StatusAborted:
		return true
	}
	return false
}

func knownStep(s events.Step) bool {
	switch s {
	case events.StepPrompt, events.StepDesign, events.StepLatex, events.StepCompile, events.StepDone:
		return true
	}
	return false
}

// importConversation maps the old conversation c of job j (nil: the old store
// had none, and the job gets an empty one). Its id is kept when it can be a
// key, else the job's id is used and the old one kept in j.Imported.
func importConversation(j *events.Job, old *events.OldJob, c *events.OldConversation) (*events.Conversation, error) {
	conv := &events.Conversation{JobID: j.ID, Messages: []events.Message{}, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	wanted := old.ConversationID
	if c == nil {
		if wanted != "" {
			j.Imported.Conversation = fmt.Sprintf("conversation %s was not in the old store", wanted)
		} else {
			j.Imported.Conversation = "the old job had no conversation"
		}
	} else {
		if jobID, err := events.JobIDOf(c.JobID); err != nil || jobID != j.ID {
			return nil, fmt.Errorf("%w: its conversation %q belongs to job %q", events.ErrInvalid, c.ID, c.JobID)
		}
		wanted = c.ID
		if old.ConversationID != "" && old.ConversationID != c.ID {
			j.Imported.ConversationID = old.ConversationID
		}
		if !c.CreatedAt.IsZero() {
			conv.CreatedAt = c.CreatedAt.UTC()
		}
		if !c.UpdatedAt.IsZero() {
			conv.UpdatedAt = c.UpdatedAt.UTC()
		}
		j.Imported.ConversationExtra = jsonTexts(c.Extra)
		conv.Messages = make([]events.Message, len(c.Messages))
		for i, m := range c.Messages {
			switch m.Role {
			case "system", "user", "assistant":
			default:
				return nil, fmt.Errorf("%w: message %d of conversation %s has role %q (want system, user or assistant)",
					events.ErrInvalid, i, c.ID, m.Role)
			}
			conv.Messages[i] = events.Message{Role: m.Role, Content: m.Content, Time: m.Timestamp.UTC()}
			if len(m.Extra) > 0 {
				if j.Imported.MessageExtra == nil {
					j.Imported.MessageExtra = map[string]map[string]string{}
				}
				j.Imported.MessageExtra[strconv.Itoa(i)] = jsonTexts(m.Extra)
			}
		}
	}
	conv.ID = wanted
	if wanted == "" || !kvstore.ValidKey(wanted) {
		if wanted != "" {
			j.Imported.ConversationID = wanted
		}
		conv.ID = j.ID
	}
	j.ConversationID = conv.ID
	return conv, nil
}

// mapState sets j's state from the old one and says what it could not keep.
func (p *Plane) mapState(j *events.Job, rec *events.ImportRecord, recompile bool, plan *importPlan) string {
	switch j.Status {
	case events.StatusPending, events.StatusError, events.StatusRunning:
		return lifecycle.ResumeImported(j, stageOfStep(j.CurrentStep))
	case events.StatusWaitingAIFix:
		return lifecycle.ResumeImported(j, events.StageFix)
	}
	if rec.PDF != nil {
		if !bytes.HasPrefix(rec.PDF, []byte("%PDF-")) {
			j.Imported.PDF = "missing: the file is not a PDF"
			return "the PDF file is not a PDF: the old pdf_url is kept in imported.pdf_url"
		}
		plan.pdf = rec.PDF
		j.PDFURL = p.cfg.PublicURL + "/jobs/" + j.ID + "/pdf"
		j.Imported.PDF = "imported"
		return ""
	}
	if j.Status != events.StatusCompleted || (rec.Job.PDFURL == "" && rec.PDFNote == "") {
		return ""
	}
	why := rec.PDFNote
	if why == "" {
		why = "no file found for " + rec.Job.PDFURL
	}
	if recompile && strings.TrimSpace(j.Latex) != "" {
		j.Imported.PDF = "recompile: " + why
		lifecycle.ResumeImported(j, events.StageCompile)
		return "PDF missing (" + why + "): rebuilding it from its LaTeX"
	}
	j.Imported.PDF = "missing: " + why
	if recompile {
		return "PDF missing (" + why + ") and no LaTeX to rebuild it from: the old pdf_url is kept in imported.pdf_url"
	}
	return "PDF missing (" + why + "): the old pdf_url is kept in imported.pdf_url (--recompile-missing rebuilds it)"
}

// stageOfStep is the stage that carries on a job at step.
func stageOfStep(step events.Step) events.Stage {
	switch step {
	case events.StepLatex:
		return events.StageLatex
	case events.StepCompile, events.StepDone:
		return events.StageCompile
	}
	return events.StageDesign
}

// jsonTexts turns JSON values into their compact text; nil for none.
func jsonTexts(m map[string]json.RawMessage) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var b bytes.Buffer
		if json.Compact(&b, v) != nil {
			out[k] = string(v)
			continue
		}
		out[k] = b.String()
	}
	return out
}
