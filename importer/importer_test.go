package importer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const jobID = "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The three spellings of the old field names read as the same job, and fields
// sheetpipe does not know are kept.
func TestSpellings(t *testing.T) {
	docs := map[string]string{
		"go":    `{"ID":"` + jobID + `","UserID":"ada","Status":"completed","CurrentStep":"done","PDFURL":"/x.pdf","ConversationID":"c1","RetryCount":2,"MaxRetries":3,"ErrorLog":{"Log":"l","Snippet":"s","Line":4},"CreatedAt":"2024-01-02T03:04:05.123456789Z","Tenant":"acme"}`,
		"camel": `{"id":"` + jobID + `","userId":"ada","status":"completed","currentStep":"done","pdfUrl":"/x.pdf","conversationId":"c1","retryCount":2,"maxRetries":3,"errorLog":{"log":"l","snippet":"s","line":4},"createdAt":"2024-01-02T03:04:05.123456789Z","Tenant":"acme"}`,
		"snake": `{"id":"` + jobID + `","user_id":"ada","status":"completed","current_step":"done","pdf_url":"/x.pdf","conversation_id":"c1","retry_count":2,"max_retries":3,"error_log":{"log":"l","snippet":"s","line":4},"created_at":"2024-01-02T03:04:05.123456789Z","Tenant":"acme"}`,
	}
	var first any
	for name, doc := range docs {
		j, err := decodeJob([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if j.UserID != "ada" || j.RetryCount != 2 || j.ErrorLog == nil || j.ErrorLog.Line != 4 || string(j.Extra["Tenant"]) != `"acme"` || j.CreatedAt.Nanosecond() != 123456789 {
			t.Fatalf("%s: decoded %+v", name, j)
		}
		if first == nil {
			first = j
		} else if !reflect.DeepEqual(first, j) {
			t.Fatalf("%s decodes differently:\n%+v\n%+v", name, first, j)
		}
	}
}

func TestBadRecords(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"field twice":   {`{"UserID":"a","user_id":"b"}`, `field userid is given twice ("UserID" and "user_id")`},
		"wrong type":    {`{"retry_count":"3"}`, `field "retry_count": want a int, not a JSON string`},
		"bad time":      {`{"CreatedAt":"yesterday"}`, `field "CreatedAt": want an RFC 3339 time`},
		"not an object": {`[1,2]`, "not a JSON object"},
	} {
		_, err := decodeJob([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

// An object keyed by id: a record without id takes its key; one whose id
// differs from its key is refused.
func TestKeyedObjectLayout(t *testing.T) {
	dir := t.TempDir()
	other := "1b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"
	write(t, dir, "jobs.json", `{"`+jobID+`": {"user_id":"ada","status":"pending","current_step":"prompt"},
		"`+other+`": {"id":"`+jobID+`","user_id":"bob","status":"pending","current_step":"prompt"}}`)
	write(t, dir, "conversations.json", `[{"id":"c","job_id":"`+strings.ToUpper(jobID)+`","messages":[{"role":"user","content":"hi","time":"2024-01-01T00:00:00Z"}]}]`)
	s, err := Read(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records) != 1 || s.Records[0].Job.ID != jobID || s.Records[0].Conversation == nil || s.Records[0].Conversation.Messages[0].Timestamp.IsZero() {
		t.Fatalf("records %+v", s.Records)
	}
	if len(s.Refused) != 1 || !strings.Contains(s.Refused[0].Reason, "is not its id") {
		t.Fatalf("refused %+v", s.Refused)
	}
}

// A malformed store file as a whole fails the read with where it breaks.
func TestMalformedStoreFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "jobs.json", "[\n{\"id\": 1},\n{oops}\n]")
	if _, err := Read(dir, ""); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("error %v, want malformed JSON at line 3", err)
	}
}

// A pdf_url reaches no file outside the store and PDF directories: not by
// "..", not by an absolute path, not through a symbolic link.
func TestPDFStaysInsideItsDirectories(t *testing.T) {
	outside := t.TempDir()
	write(t, outside, "secret.pdf", "%PDF-1.4 secret")
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "secret.pdf"), filepath.Join(dir, "link.pdf")); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "ok.pdf", "%PDF-1.4 ok")
	rel, err := filepath.Rel(dir, filepath.Join(outside, "secret.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{rel, filepath.Join(outside, "secret.pdf"), "link.pdf", "file://" + filepath.Join(outside, "secret.pdf")} {
		rec := Record{}
		rec.Job.Status, rec.Job.PDFURL = "completed", url
		f, err := newPDFFinder(dir)
		if err != nil {
			t.Fatal(err)
		}
		f.find(&rec)
		f.close()
		if got := rec.Load(1 << 20); got.PDF != nil {
			t.Errorf("pdf_url %q read %q from outside the store", url, got.PDF)
		}
	}
	rec := Record{}
	rec.Job.Status, rec.Job.PDFURL = "completed", "http://old/files/ok.pdf"
	f, _ := newPDFFinder(dir)
	f.find(&rec)
	f.close()
	if got := rec.Load(1 << 20); string(got.PDF) != "%PDF-1.4 ok" {
		t.Fatalf("pdf_url by file name read %q (%s)", got.PDF, got.PDFNote)
	}
	if got := rec.Load(4); got.PDF != nil || !strings.Contains(got.PDFNote, "larger than") {
		t.Fatalf("a PDF over the limit: %q (%s)", got.PDF, got.PDFNote)
	}
}
