package events

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Operations of batches on the control API: sheetpipe.batch submits one,
// sheetpipe.batch.get reads its aggregate status.
const (
	OpBatch    = "batch"
	OpBatchGet = "batch.get"
)

// MaxBatchJobs bounds the jobs of one batch: its status is read job by job.
const MaxBatchJobs = 1000

// BatchRequest submits many job requests at once. BatchID is optional: without
// one the service assigns a UUID, but only a client that sets it can send the
// batch again after a lost reply and get the same jobs back.
type BatchRequest struct {
	BatchID string       `json:"batch_id,omitempty"`
	Jobs    []JobRequest `json:"jobs"`
	// Lines are the input lines the jobs came from (newline-delimited JSON), so
	// that a bad request is reported by its line; nil for a JSON body.
	Lines []int `json:"-"`
}

// BatchReply answers sheetpipe.batch and POST /batches: the jobs' ids in the
// order of the request.
type BatchReply struct {
	BatchID string   `json:"batch_id"`
	JobIDs  []string `json:"job_ids"`
}

// BatchRef names a batch: the body of sheetpipe.batch.get.
type BatchRef struct {
	BatchID string `json:"batch_id"`
}

// BatchJob is one job of a batch as its status shows it. Status is StatusMissing
// for a job the batch names that was never created (its submit was cut short:
// send the batch again).
type BatchJob struct {
	JobID    string `json:"job_id"`
	Status   Status `json:"status"`
	Step     Step   `json:"step"`
	Revision uint64 `json:"revision"`
}

// StatusMissing is the status a batch's status shows for a job not created yet.
const StatusMissing Status = "missing"

// BatchStatus is the aggregate status of a batch: how many of its jobs are in
// each status, and Done once every job has ended (Finished). Jobs lists every job
// in request order; a status sent by a watch of the batch lists, after the first,
// only the jobs that changed since the one before.
type BatchStatus struct {
	BatchID   string         `json:"batch_id"`
	Total     int            `json:"total"`
	Counts    map[Status]int `json:"counts"`
	Done      bool           `json:"done"`
	Jobs      []BatchJob     `json:"jobs"`
	CreatedAt time.Time      `json:"created_at"`
}

// NewBatchStatus tallies jobs into the status of batch id.
func NewBatchStatus(id string, created time.Time, jobs []BatchJob) BatchStatus {
	s := BatchStatus{BatchID: id, Total: len(jobs), Counts: map[Status]int{}, Done: true, Jobs: jobs, CreatedAt: created}
	for _, j := range jobs {
		s.Counts[j.Status]++
		s.Done = s.Done && Finished(j.Status, j.Step)
	}
	return s
}

// BatchTally follows a batch's status through its jobs' events.
type BatchTally struct {
	status BatchStatus
	index  map[string]int
}

// NewBatchTally starts from s, a full status of the batch.
func NewBatchTally(s BatchStatus) *BatchTally {
	t := &BatchTally{status: s, index: make(map[string]int, len(s.Jobs))}
	t.status.Jobs = append([]BatchJob(nil), s.Jobs...)
	for i, j := range s.Jobs {
		t.index[j.JobID] = i
	}
	return t
}

// ID is the batch's id.
func (t *BatchTally) ID() string { return t.status.BatchID }

// Newer reports whether ev names one of the batch's jobs at a later revision
// than the tally holds: whether Apply would take it.
func (t *BatchTally) Newer(ev StatusEvent) bool {
	i, ok := t.index[ev.JobID]
	return ok && ev.Revision > t.status.Jobs[i].Revision
}

// Apply records ev if it is a later state of one of the batch's jobs, and then
// returns the batch's new status listing that job alone.
func (t *BatchTally) Apply(ev StatusEvent) (BatchStatus, bool) {
	if !t.Newer(ev) {
		return BatchStatus{}, false
	}
	i := t.index[ev.JobID]
	j := BatchJob{JobID: ev.JobID, Status: ev.Status, Step: ev.Step, Revision: ev.Revision}
	t.status.Jobs[i] = j
	return t.changed([]BatchJob{j}), true
}

// Refresh merges a full status read later: the jobs it shows at a later
// revision replace what the tally had. It returns the new status listing those
// jobs, if any changed.
func (t *BatchTally) Refresh(s BatchStatus) (BatchStatus, bool) {
	var jobs []BatchJob
	for _, j := range s.Jobs {
		i, ok := t.index[j.JobID]
		if ok && j.Revision > t.status.Jobs[i].Revision {
			t.status.Jobs[i] = j
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return BatchStatus{}, false
	}
	return t.changed(jobs), true
}

// changed is the batch's current status with jobs as its list.
func (t *BatchTally) changed(jobs []BatchJob) BatchStatus {
	s := NewBatchStatus(t.status.BatchID, t.status.CreatedAt, t.status.Jobs)
	s.Jobs = jobs
	return s
}

// DecodeBatch parses a JSON batch {"batch_id"?, "jobs": [job request...]}; each
// job is decoded as a submit's request is, and a bad one is named by its index.
func DecodeBatch(data []byte) (BatchRequest, error) {
	var raw struct {
		BatchID string            `json:"batch_id"`
		Jobs    []json.RawMessage `json:"jobs"`
	}
	if err := DecodeControl(data, &raw); err != nil {
		return BatchRequest{}, err
	}
	b := BatchRequest{BatchID: raw.BatchID, Jobs: make([]JobRequest, 0, len(raw.Jobs))}
	for i, data := range raw.Jobs {
		req, err := DecodeRequest(data)
		if err != nil {
			return b, fmt.Errorf("%w: jobs[%d]: %s", ErrInvalid, i, reason(err))
		}
		b.Jobs = append(b.Jobs, req)
	}
	return b, nil
}

// DecodeBatchLines parses newline-delimited JSON, one job request per line;
// blank lines are skipped, and a bad line is named by its number (from 1).
func DecodeBatchLines(data []byte) (BatchRequest, error) {
	var b BatchRequest
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		req, err := DecodeRequest(line)
		if err != nil {
			return b, fmt.Errorf("%w: line %d: %s", ErrInvalid, n, reason(err))
		}
		b.Jobs = append(b.Jobs, req)
		b.Lines = append(b.Lines, n)
	}
	if err := sc.Err(); err != nil {
		return b, fmt.Errorf("%w: read lines: %v", ErrInvalid, err)
	}
	return b, nil
}

// Validate checks the batch without changing it: its id, if any, is a UUID; it
// has 1..MaxBatchJobs jobs, each valid as a submit and with a job id no other of
// them has. The error names the first bad job (by line when Lines are known).
func (b *BatchRequest) Validate(defaultMaxRetries int) error {
	if b.BatchID != "" {
		if _, err := batchIDOf(b.BatchID); err != nil {
			return err
		}
	}
	if len(b.Jobs) == 0 || len(b.Jobs) > MaxBatchJobs {
		return fmt.Errorf("%w: a batch has 1..%d jobs, this one %d", ErrInvalid, MaxBatchJobs, len(b.Jobs))
	}
	seen := make(map[string]int, len(b.Jobs))
	for i := range b.Jobs {
		probe := b.Jobs[i]
		probe.DependsOn = append([]string(nil), probe.DependsOn...)
		if err := probe.Validate(defaultMaxRetries); err != nil {
			return fmt.Errorf("%w: %s: %s", ErrInvalid, b.Where(i), reason(err))
		}
		if probe.JobID == "" {
			continue
		}
		if first, dup := seen[probe.JobID]; dup {
			return fmt.Errorf("%w: %s: job_id %s is also the job_id of %s", ErrInvalid, b.Where(i), probe.JobID, b.Where(first))
		}
		seen[probe.JobID] = i
	}
	return nil
}

// Where names job i of the batch in an error: its line, else its index.
func (b *BatchRequest) Where(i int) string {
	if i < len(b.Lines) {
		return fmt.Sprintf("line %d", b.Lines[i])
	}
	return fmt.Sprintf("jobs[%d]", i)
}

// Assign gives the batch and each of its jobs their ids, as Validate accepted
// them: ids given are normalised to lower case, a missing batch id is a new
// UUID, and a job without one gets BatchJobID(batch id, index), so the same batch
// sent again names the same jobs. It returns the job ids in order.
func (b *BatchRequest) Assign() ([]string, error) {
	if b.BatchID == "" {
		b.BatchID = uuid.NewString()
	}
	id, err := batchIDOf(b.BatchID)
	if err != nil {
		return nil, err
	}
	b.BatchID = id
	ids := make([]string, len(b.Jobs))
	for i := range b.Jobs {
		if b.Jobs[i].JobID == "" {
			b.Jobs[i].JobID = BatchJobID(id, i)
		}
		if ids[i], err = JobIDOf(b.Jobs[i].JobID); err != nil {
			return nil, fmt.Errorf("%s: %w", b.Where(i), err)
		}
		b.Jobs[i].JobID = ids[i]
	}
	return ids, nil
}

// Digest identifies the batch's content (its jobs' requests, ids included) so
// that the same batch id sent with other jobs can be told from a resend.
func (b *BatchRequest) Digest() (string, error) {
	data, err := json.Marshal(b.Jobs)
	if err != nil {
		return "", fmt.Errorf("encode batch %s: %w", b.BatchID, err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// BatchJobID is the id of job index of batch id when the request names none: a
// UUIDv4 drawn from a hash of both, the same on every resend of the batch.
func BatchJobID(batchID string, index int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "batch:%s:%d", batchID, index))
	var id uuid.UUID
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id.String()
}

// reason is err's message without the class its wrapping names.
func reason(err error) string {
	msg := err.Error()
	for _, class := range []error{ErrInvalid, ErrMalformed} {
		msg = strings.TrimPrefix(msg, class.Error()+": ")
	}
	return msg
}

// BatchIDOf checks that id is a batch id (a UUID in its 36-character form) and
// returns it in lower case.
func BatchIDOf(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w: batch_id is required", ErrInvalid)
	}
	return batchIDOf(id)
}

func batchIDOf(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", fmt.Errorf("%w: batch_id %q is not a UUID like 0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10", ErrInvalid, id)
	}
	return u.String(), nil
}
