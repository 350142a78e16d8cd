// Package oldstore writes, for tests and benchmarks of sheetctl import, a JSON
// store of the pipeline sheetpipe replaces: jobs in every status and step, with
// conversations, PDFs present and absent, in the three spellings of its field
// names and both of its layouts, and a handful of broken records.
package oldstore

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Job is a job of the old store, as its Go struct had it.
type Job struct {
	ID, UserID, Status, CurrentStep, Prompt, Design, Latex, PDFURL, ErrorMessage string
	ErrorLog                                                                     *ErrorLog
	ConversationID                                                               string
	RetryCount, MaxRetries                                                       int
	CreatedAt, UpdatedAt                                                         time.Time
	// Extra are fields sheetpipe does not know, written as they are.
	Extra map[string]any
}

// ErrorLog is the old compile failure.
type ErrorLog struct {
	Log, Snippet string
	Line         int
}

// Conversation is an old conversation.
type Conversation struct {
	ID, JobID            string
	Messages             []Message
	CreatedAt, UpdatedAt time.Time
}

// Message is an old turn; a zero Timestamp is left out.
type Message struct {
	Role, Content string
	Timestamp     time.Time
}

// Store is what Generate wrote.
type Store struct {
	Dir, PDFDir   string
	Jobs          []Job                   // the good jobs, in the order written
	Conversations map[string]Conversation // by job id
	PDFs          map[string][]byte       // the PDFs present, by job id
	// Broken names the sources of the records that must be refused.
	Broken []string
}

// States are the old (status, step) pairs Generate cycles through.
var States = [][2]string{
	{"pending", "prompt"}, {"pending", "design"}, {"pending", "latex"}, {"pending", "compile"},
	{"running", "design"}, {"running", "latex"}, {"running", "compile"},
	{"error", "design"}, {"error", "latex"}, {"error", "compile"},
	{"waiting_ai_fix", "compile"}, {"waiting_manual", "compile"}, {"waiting_manual", "latex"},
	{"completed", "done"}, {"completed", "done"}, {"completed", "done"},
	{"aborted", "design"}, {"aborted", "compile"},
}

// Latex is the LaTeX of every generated job that has some: it compiles.
const Latex = "\\documentclass{article}\n\\begin{document}\nFractions: $\\frac{1}{2}+\\frac{1}{4}$\n\\end{document}\n"

// Generate writes n good jobs and the broken records into dir: the even jobs in
// jobs.json (an array) with their conversations in conversations.json (an
// object keyed by id), the odd ones as jobs/<id>.json and
// conversations/<id>.json. Spellings rotate: Go names, camelCase, snake_case.
// Of the completed jobs, one in three has its PDF under dir (pdf_url
// "/storage/pdfs/<id>.pdf" found as storage/pdfs/<id>.pdf), one in three under
// pdfDir (pdf_url "http://old-host/files/<id>.pdf"), one in three none.
func Generate(dir, pdfDir string, n int) (*Store, error) {
	s := &Store{Dir: dir, PDFDir: pdfDir, Conversations: map[string]Conversation{}, PDFs: map[string][]byte{}}
	base := time.Date(2024, 1, 15, 9, 30, 0, 123456789, time.UTC)
	var arr []map[string]any
	convs := map[string]map[string]any{}
	for _, d := range []string{"jobs", "conversations", "storage/pdfs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(pdfDir, 0o755); err != nil {
		return nil, err
	}
	completed := 0
	for i := range n {
		st := States[i%len(States)]
		id := uuid.NewString()
		j := Job{ID: id, UserID: fmt.Sprintf("user-%d", i%7), Status: st[0], CurrentStep: st[1],
			Prompt: fmt.Sprintf("worksheet %d: fractions for grade %d", i, 3+i%5), MaxRetries: 3, RetryCount: i % 3,
			CreatedAt: base.Add(time.Duration(i) * time.Hour), UpdatedAt: base.Add(time.Duration(i)*time.Hour + 7*time.Minute)}
		if st[1] != "prompt" && st[1] != "design" {
			j.Design = fmt.Sprintf("Design %d: ten exercises", i)
		}
		if st[1] == "compile" || st[1] == "done" {
			j.Latex = Latex
		}
		if st[0] == "waiting_ai_fix" || st[0] == "waiting_manual" || st[0] == "error" {
			j.ErrorMessage = fmt.Sprintf("Undefined control sequence %d", i)
			j.ErrorLog = &ErrorLog{Log: fmt.Sprintf("! Undefined control sequence.\nl.%d", i%40+1), Snippet: "\\frac{1}{2", Line: i%40 + 1}
		}
		if i%4 == 0 {
			j.Extra = map[string]any{"LegacyTenant": "acme", "priority_hint": i}
		}
		if i%5 != 4 { // one in five has no conversation
			j.ConversationID = uuid.NewString()
			c := Conversation{ID: j.ConversationID, JobID: id, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
			for k := range 2 + i%4 {
				m := Message{Role: []string{"system", "user", "assistant"}[k%3], Content: fmt.Sprintf("turn %d of job %d", k, i)}
				if k%2 == 0 {
					m.Timestamp = j.CreatedAt.Add(time.Duration(k) * time.Second)
				}
				c.Messages = append(c.Messages, m)
			}
			s.Conversations[id] = c
		}
		if st[0] == "completed" {
			pdf := fmt.Appendf(nil, "%%PDF-1.4\n%% old worksheet %d\n%%%%EOF\n", i)
			switch completed % 3 {
			case 0:
				j.PDFURL = "/storage/pdfs/" + id + ".pdf"
				s.PDFs[id] = pdf
				if err := os.WriteFile(filepath.Join(dir, "storage/pdfs", id+".pdf"), pdf, 0o644); err != nil {
					return nil, err
				}
			case 1:
				j.PDFURL = "http://old-host/files/" + id + ".pdf"
				s.PDFs[id] = pdf
				if err := os.WriteFile(filepath.Join(pdfDir, id+".pdf"), pdf, 0o644); err != nil {
					return nil, err
				}
			default:
				j.PDFURL = "/storage/pdfs/gone-" + id + ".pdf"
			}
			completed++
		}
		s.Jobs = append(s.Jobs, j)
		spell := spellings[i%3]
		jm := j.encode(spell)
		var cm map[string]any
		if c, ok := s.Conversations[id]; ok {
			cm = c.encode(spell)
		}
		if i%2 == 0 {
			arr = append(arr, jm)
			if cm != nil {
				convs[j.ConversationID] = cm
			}
			continue
		}
		if err := writeJSON(filepath.Join(dir, "jobs", id+".json"), jm); err != nil {
			return nil, err
		}
		if cm != nil {
			if err := writeJSON(filepath.Join(dir, "conversations", j.ConversationID+".json"), cm); err != nil {
				return nil, err
			}
		}
	}
	if err := s.addBroken(&arr, convs); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, "jobs.json"), arr); err != nil {
		return nil, err
	}
	return s, writeJSON(filepath.Join(dir, "conversations.json"), convs)
}

// addBroken adds the records that must be refused.
func (s *Store) addBroken(arr *[]map[string]any, convs map[string]map[string]any) error {
	good := func() map[string]any {
		return Job{ID: uuid.NewString(), UserID: "u", Status: "completed", CurrentStep: "done", Prompt: "p",
			CreatedAt: time.Now(), UpdatedAt: time.Now()}.encode(spellings[2])
	}
	notUUID := good()
	notUUID["id"] = "job-42"
	noUser := good()
	delete(noUser, "user_id")
	badStatus := good()
	badStatus["status"] = "exploded"
	n := len(*arr)
	*arr = append(*arr, notUUID, noUser, badStatus)
	s.Broken = append(s.Broken, fmt.Sprintf("jobs.json[%d]", n), fmt.Sprintf("jobs.json[%d]", n+1), fmt.Sprintf("jobs.json[%d]", n+2))
	orphan := uuid.NewString()
	convs[orphan] = Conversation{ID: orphan, JobID: uuid.NewString(),
		Messages: []Message{{Role: "user", Content: "hello"}}}.encode(spellings[1])
	s.Broken = append(s.Broken, fmt.Sprintf("conversations.json[%q]", orphan))
	bad := "jobs/" + uuid.NewString() + ".json"
	s.Broken = append(s.Broken, bad)
	return os.WriteFile(filepath.Join(s.Dir, bad), []byte(`{"ID": "x", "UserID": `), 0o644)
}

// spelling turns a Go field name into one of the three spellings.
type spelling func(goName string) string

var spellings = []spelling{
	func(n string) string { return n },
	camel,
	func(n string) string { return snake(n) },
}

// camel: "UserID" -> "userId", "PDFURL" -> "pdfUrl", "ID" -> "id".
func camel(n string) string {
	s := snake(n)
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

// snake: "UserID" -> "user_id", "PDFURL" -> "pdf_url".
func snake(n string) string {
	special := map[string]string{"ID": "id", "UserID": "user_id", "PDFURL": "pdf_url", "ConversationID": "conversation_id", "JobID": "job_id"}
	if s, ok := special[n]; ok {
		return s
	}
	var b strings.Builder
	for i, r := range n {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (j Job) encode(sp spelling) map[string]any {
	m := map[string]any{}
	for k, v := range map[string]any{"ID": j.ID, "UserID": j.UserID, "Status": j.Status, "CurrentStep": j.CurrentStep,
		"Prompt": j.Prompt, "Design": j.Design, "Latex": j.Latex, "PDFURL": j.PDFURL, "ErrorMessage": j.ErrorMessage,
		"ConversationID": j.ConversationID, "RetryCount": j.RetryCount, "MaxRetries": j.MaxRetries,
		"CreatedAt": j.CreatedAt, "UpdatedAt": j.UpdatedAt} {
		m[sp(k)] = v
	}
	if j.ErrorLog != nil {
		m[sp("ErrorLog")] = map[string]any{sp("Log"): j.ErrorLog.Log, sp("Snippet"): j.ErrorLog.Snippet, sp("Line"): j.ErrorLog.Line}
	} else {
		m[sp("ErrorLog")] = nil
	}
	for k, v := range j.Extra {
		m[k] = v
	}
	return m
}

func (c Conversation) encode(sp spelling) map[string]any {
	msgs := make([]map[string]any, len(c.Messages))
	for i, msg := range c.Messages {
		mm := map[string]any{sp("Role"): msg.Role, sp("Content"): msg.Content}
		if !msg.Timestamp.IsZero() {
			mm[sp("Timestamp")] = msg.Timestamp
		}
		msgs[i] = mm
	}
	return map[string]any{sp("ID"): c.ID, sp("JobID"): c.JobID, sp("Messages"): msgs,
		sp("CreatedAt"): c.CreatedAt, sp("UpdatedAt"): c.UpdatedAt}
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
