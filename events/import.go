package events

import (
	"encoding/json"
	"time"
)

// OpImport is the control operation that imports records of the old pipeline's
// JSON store (sheetctl import streams them in chunks).
const OpImport = "import"

// MaxImportRecords bounds the records of one import request.
const MaxImportRecords = 500

// ImportRequest is the body of sheetpipe.import: a chunk of old records, each a
// job with its conversation (and PDF), and how to import them.
type ImportRequest struct {
	Records []ImportRecord `json:"records"`
	// DryRun checks every record and reports what an import would do; nothing
	// is written.
	DryRun bool `json:"dry_run,omitempty"`
	// Overwrite replaces a job that exists when it is itself an import nothing
	// changed since; any other existing job is skipped.
	Overwrite bool `json:"overwrite,omitempty"`
	// RecompileMissing sends a completed job whose PDF is missing to the
	// compile stage to rebuild it from its LaTeX.
	RecompileMissing bool `json:"recompile_missing,omitempty"`
}

// ImportRecord is one old job, its conversation (nil when the old store had
// none) and its PDF (nil when none was found: PDFNote says why).
type ImportRecord struct {
	// Source names where the record came from (a file, an array index), for
	// the report.
	Source       string           `json:"source,omitempty"`
	Job          OldJob           `json:"job"`
	Conversation *OldConversation `json:"conversation,omitempty"`
	PDF          []byte           `json:"pdf,omitempty"`
	PDFNote      string           `json:"pdf_note,omitempty"`
}

// OldJob is a job of the old store, its field names normalised.
type OldJob struct {
	ID             string                     `json:"id"`
	UserID         string                     `json:"user_id"`
	Status         Status                     `json:"status"`
	CurrentStep    Step                       `json:"current_step"`
	Prompt         string                     `json:"prompt"`
	Design         string                     `json:"design"`
	Latex          string                     `json:"latex"`
	PDFURL         string                     `json:"pdf_url"`
	ErrorMessage   string                     `json:"error_message"`
	ErrorLog       *OldErrorLog               `json:"error_log,omitempty"`
	ConversationID string                     `json:"conversation_id"`
	RetryCount     int                        `json:"retry_count"`
	MaxRetries     int                        `json:"max_retries"`
	CreatedAt      time.Time                  `json:"created_at"`
	UpdatedAt      time.Time                  `json:"updated_at"`
	Extra          map[string]json.RawMessage `json:"extra,omitempty"`
}

// OldErrorLog is the old job's compile failure.
type OldErrorLog struct {
	Log     string `json:"log"`
	Snippet string `json:"snippet"`
	Line    int    `json:"line"`
}

// OldConversation is a conversation of the old store.
type OldConversation struct {
	ID        string                     `json:"id"`
	JobID     string                     `json:"job_id"`
	Messages  []OldMessage               `json:"messages"`
	CreatedAt time.Time                  `json:"created_at"`
	UpdatedAt time.Time                  `json:"updated_at"`
	Extra     map[string]json.RawMessage `json:"extra,omitempty"`
}

// OldMessage is one turn of an old conversation; Timestamp is zero when it had
// none.
type OldMessage struct {
	Role      string                     `json:"role"`
	Content   string                     `json:"content"`
	Timestamp time.Time                  `json:"timestamp,omitzero"`
	Extra     map[string]json.RawMessage `json:"extra,omitempty"`
}

// Outcomes of one imported record.
const (
	// ImportImported: stored as it was (a finished job, kept with no ticket).
	ImportImported = "imported"
	// ImportResumed: stored and handed to a stage, which carries on the work.
	ImportResumed = "resumed"
	// ImportSkipped: a job with the id exists and was left as it is.
	ImportSkipped = "skipped"
	// ImportRefused: the record cannot be imported; Reason says why.
	ImportRefused = "refused"
)

// ImportResult is what became (or, in a dry run, would become) of one record.
type ImportResult struct {
	JobID     string `json:"job_id"`
	Source    string `json:"source,omitempty"`
	Outcome   string `json:"outcome"`
	OldStatus Status `json:"old_status,omitempty"`
	// Status, Step and Stage are the job's state after the import (Stage: the
	// stage it was handed to).
	Status Status `json:"status,omitempty"`
	Step   Step   `json:"step,omitempty"`
	Stage  Stage  `json:"stage,omitempty"`
	// Reason says why a record was refused or skipped.
	Reason string `json:"reason,omitempty"`
	// Note says what the import could not keep as it was (a missing PDF).
	Note string `json:"note,omitempty"`
	// Overwritten: the job replaced an earlier, untouched import (--overwrite).
	Overwritten bool `json:"overwritten,omitempty"`
}

// ImportReply answers sheetpipe.import: one result per record, in order.
type ImportReply struct {
	DryRun  bool           `json:"dry_run,omitempty"`
	Results []ImportResult `json:"results"`
}
