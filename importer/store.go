package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/events"
)

// Store is an old store as read: the records to import, in the order of the
// store, and the records refused while reading it.
type Store struct {
	Records []Record
	Refused []Refusal
	// Layout is "files" (jobs.json, conversations.json), "dirs" (jobs/,
	// conversations/) or "files+dirs".
	Layout string
	// Conversations counts the conversations read, paired or not.
	Conversations int
}

// Record is one job of the old store with its conversation; its PDF is read
// only when the record is sent (Load), so a large store is not held in memory.
type Record struct {
	events.ImportRecord
	// pdfRoot and pdfPath are the PDF file pdf_url names, under the directory
	// pdfRoot; "" when none was found (ImportRecord.PDFNote says why when the
	// job named one).
	pdfRoot, pdfPath string
}

// Refusal is a record that cannot be imported.
type Refusal struct {
	Source string        `json:"source"`
	JobID  string        `json:"job_id,omitempty"`
	Status events.Status `json:"old_status,omitempty"`
	Reason string        `json:"reason"`
}

// raw is one record of a store file before decoding.
type raw struct {
	source string
	key    string // its key in an object keyed by id; "" otherwise
	data   json.RawMessage
}

// Read reads the old store in dir. PDFs are looked up relative to dir, then to
// pdfDir ("" for none). It fails only when dir is not a store or a store file
// as a whole cannot be read; a bad record is refused in Store.Refused.
func Read(dir, pdfDir string) (*Store, error) {
	s := &Store{}
	jobs, err := s.collect(dir, "jobs")
	if err != nil {
		return nil, err
	}
	convs, err := s.collect(dir, "conversations")
	if err != nil {
		return nil, err
	}
	if s.Layout == "" {
		return nil, fmt.Errorf("%w: %s has neither jobs.json nor a jobs/ directory", ErrNoStore, dir)
	}
	byID := s.decodeJobs(jobs)
	s.pairConversations(convs, byID)
	pdfs, err := newPDFFinder(dir, pdfDir)
	if err != nil {
		return nil, err
	}
	defer pdfs.close()
	for i := range s.Records {
		pdfs.find(&s.Records[i])
	}
	return s, nil
}

// collect reads the records of kind ("jobs" or "conversations") from
// <kind>.json and from <kind>/*.json, noting the layouts found.
func (s *Store) collect(dir, kind string) ([]raw, error) {
	var out []raw
	file := filepath.Join(dir, kind+".json")
	data, err := os.ReadFile(file)
	switch {
	case err == nil:
		s.addLayout("files")
		recs, err := splitFile(kind+".json", data)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		out = append(out, recs...)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	sub := filepath.Join(dir, kind)
	entries, err := os.ReadDir(sub)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return out, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", sub, err)
	}
	s.addLayout("dirs")
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		source := kind + "/" + e.Name()
		data, err := os.ReadFile(filepath.Join(sub, e.Name()))
		if err != nil {
			s.refuse(Refusal{Source: source, Reason: err.Error()})
			continue
		}
		if !json.Valid(data) {
			s.refuse(Refusal{Source: source, Reason: "malformed JSON: " + jsonError(data)})
			continue
		}
		out = append(out, raw{source: source, data: data})
	}
	return out, nil
}

func (s *Store) addLayout(l string) {
	switch s.Layout {
	case "", l:
		s.Layout = l
	default:
		s.Layout = "files+dirs"
	}
}

func (s *Store) refuse(r Refusal) { s.Refused = append(s.Refused, r) }

// splitFile splits a store file, a JSON array of records or an object of
// records keyed by id, into its records.
func splitFile(name string, data []byte) ([]raw, error) {
	trimmed := bytes.TrimSpace(data)
	if !json.Valid(trimmed) {
		return nil, fmt.Errorf("malformed JSON: %s", jsonError(trimmed))
	}
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, err
		}
		out := make([]raw, len(list))
		for i, d := range list {
			out[i] = raw{source: fmt.Sprintf("%s[%d]", name, i), data: d}
		}
		return out, nil
	case len(trimmed) > 0 && trimmed[0] == '{':
		keys, values, err := orderedObject(trimmed)
		if err != nil {
			return nil, err
		}
		out := make([]raw, len(keys))
		for i, k := range keys {
			out[i] = raw{source: fmt.Sprintf("%s[%s]", name, strconv.Quote(k)), key: k, data: values[i]}
		}
		return out, nil
	}
	return nil, errors.New("want a JSON array of records or an object of records keyed by id")
}

// orderedObject splits a JSON object into its keys and values in file order.
func orderedObject(data []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	var keys []string
	var values []json.RawMessage
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys, values = append(keys, t.(string)), append(values, v)
	}
	return keys, values, nil
}

// jsonError says where data stops being JSON.
func jsonError(data []byte) string {
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n")) + 1
		return fmt.Sprintf("%v (line %d)", se, line)
	}
	if err == nil {
		return "invalid"
	}
	return err.Error()
}

// canonical returns a UUID in its lower-case form, or s as it is.
func canonical(s string) string {
	if u, err := uuid.Parse(s); err == nil && len(s) == 36 {
		return u.String()
	}
	return s
}

// decodeJobs decodes the job records; a record whose id was seen before is
// refused. It returns the index of each job in Records by canonical id.
func (s *Store) decodeJobs(jobs []raw) map[string]int {
	byID := make(map[string]int, len(jobs))
	for _, r := range jobs {
		j, err := decodeJob(r.data)
		if err != nil {
			s.refuse(Refusal{Source: r.source, JobID: idOf(r), Reason: err.Error()})
			continue
		}
		if j.ID == "" && r.key != "" {
			j.ID = r.key
		}
		id := canonical(j.ID)
		switch {
		case r.key != "" && canonical(r.key) != id:
			s.refuse(Refusal{Source: r.source, JobID: j.ID, Status: j.Status,
				Reason: fmt.Sprintf("its key %q is not its id %q", r.key, j.ID)})
			continue
		case id == "":
			s.refuse(Refusal{Source: r.source, Status: j.Status, Reason: "no id"})
			continue
		}
		if i, dup := byID[id]; dup {
			s.refuse(Refusal{Source: r.source, JobID: j.ID, Status: j.Status,
				Reason: "duplicate id: the job of " + s.Records[i].Source + " has it too"})
			continue
		}
		byID[id] = len(s.Records)
		s.Records = append(s.Records, Record{ImportRecord: events.ImportRecord{Source: r.source, Job: j}})
	}
	return byID
}

// idOf is what a record that does not decode says of its id, if anything.
func idOf(r raw) string {
	if r.key != "" {
		return r.key
	}
	if r.source != "" && strings.HasPrefix(r.source, "jobs/") {
		return strings.TrimSuffix(strings.TrimPrefix(r.source, "jobs/"), ".json")
	}
	return ""
}

// pairConversations gives each job its conversation: the one whose job_id names
// it (the old Store's GetConversationByJobID); of several, the one the job's
// conversation_id names, else the first. A conversation whose job is not in the
// store, or that lost to another, is refused.
func (s *Store) pairConversations(convs []raw, byID map[string]int) {
	sources := map[int]string{} // the source of each paired conversation
	for _, r := range convs {
		c, err := decodeConversation(r.data)
		if err != nil {
			s.refuse(Refusal{Source: r.source, Reason: "conversation: " + err.Error()})
			continue
		}
		if c.ID == "" && r.key != "" {
			c.ID = r.key
		}
		s.Conversations++
		i, ok := byID[canonical(c.JobID)]
		switch {
		case c.JobID == "":
			s.refuse(Refusal{Source: r.source, Reason: fmt.Sprintf("conversation %q names no job", c.ID)})
			continue
		case !ok:
			s.refuse(Refusal{Source: r.source, JobID: c.JobID,
				Reason: fmt.Sprintf("conversation %q: its job %s is not in the store (or was refused)", c.ID, c.JobID)})
			continue
		}
		rec := &s.Records[i]
		prev := rec.Conversation
		if prev != nil && (prev.ID == rec.Job.ConversationID || c.ID != rec.Job.ConversationID) {
			s.refuse(Refusal{Source: r.source, JobID: c.JobID,
				Reason: fmt.Sprintf("conversation %q: job %s has another conversation, %q", c.ID, c.JobID, prev.ID)})
			continue
		}
		if prev != nil {
			s.refuse(Refusal{Source: sources[i], JobID: c.JobID,
				Reason: fmt.Sprintf("conversation %q: job %s has another conversation, %q, which its conversation_id names", prev.ID, c.JobID, c.ID)})
		}
		c.JobID = canonical(c.JobID)
		rec.Conversation, sources[i] = &c, r.source
	}
}

// Sorted returns the refusals ordered by source, for a stable report.
func (s *Store) Sorted() []Refusal {
	out := slices.Clone(s.Refused)
	slices.SortStableFunc(out, func(a, b Refusal) int { return strings.Compare(a.Source, b.Source) })
	return out
}
