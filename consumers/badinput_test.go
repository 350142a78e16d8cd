package consumers_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
)

// A request larger than the JOBS stream's maximum message size (1 MiB) is refused
// by the server when published, with a clear error, and creates nothing; a
// prompt of exactly 16 KiB is a job that completes, one byte more is a job in
// status error saying so. The pipeline goes on.
func TestOversizedRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	huge := uuid.NewString()
	data := fmt.Appendf(nil, `{"job_id":%q,"user_id":"u","prompt":%q}`, huge, strings.Repeat("x", 1<<20))
	_, err := e.nats.JS.Publish(e.ctx, events.SubjectPrompt, data, jetstream.WithMsgID(huge))
	if err == nil || !strings.Contains(err.Error(), "message size exceeds maximum allowed") {
		t.Fatalf("publishing a %d-byte request: error %v, want the stream's size refusal", len(data), err)
	}

	// 16 KiB of UTF-8, partly multi-byte: the limit counts bytes.
	exact := strings.Repeat("½", 1024) + strings.Repeat("a", events.MaxPromptBytes-1024*len("½"))
	fits, over := uuid.NewString(), uuid.NewString()
	e.submit(events.JobRequest{JobID: fits, UserID: "u", Prompt: exact})
	e.submit(events.JobRequest{JobID: over, UserID: "u", Prompt: exact + "a"})
	e.waitStatus(fits, events.StatusCompleted)
	evs := e.waitStatus(over, events.StatusError)
	if evs[0].Step != events.StepPrompt || evs[0].Error == nil ||
		!strings.Contains(evs[0].Error.Message, "prompt is 16385 bytes, more than the 16384 allowed") {
		t.Fatalf("oversized prompt event %+v error %+v", evs[0], evs[0].Error)
	}
	e.waitIdle()
	if _, _, err := e.store.Get(e.ctx, huge); err == nil {
		t.Fatal("the refused request created a job")
	}
	if n := e.llm.CallsFor("design"); n != 1 {
		t.Fatalf("%d design calls, want 1 (the 16 KiB prompt only)", n)
	}
}

// garbage returns the i-th malformed request of a flood: bytes that are not JSON,
// JSON that is not an object, objects whose job_id is not a UUID.
func garbage(i int) []byte {
	switch i % 5 {
	case 0:
		b := make([]byte, 1+rand.N(512))
		for k := range b {
			b[k] = byte(rand.N(256))
		}
		b[0] = 'x' // never a JSON value
		return b
	case 1:
		return []byte("fractions please " + fmt.Sprint(i))
	case 2:
		return fmt.Appendf(nil, `[%d, "a"]`, i)
	case 3:
		return fmt.Appendf(nil, `{"job_id":"../../etc/%d","user_id":"u","prompt":"p"}`, i)
	default:
		return fmt.Appendf(nil, `{"job_id": %d`, i)
	}
}

// 2000 malformed messages on jobs.prompt with 20 valid requests among them: every
// valid job completes, every malformed message is reported once on
// jobs.rejected (with its message id) and terminated, and JOBS ends empty.
func TestMalformedFloodDoesNotStarveValidJobs(t *testing.T) {
	t.Parallel()
	const floodSize, valid = 2000, 20
	e := newEnv(t, steps("outline", goodLatex, ""))
	ids := make([]string, 0, valid)
	start := time.Now()
	for i := range floodSize {
		e.publish(garbage(i), fmt.Sprintf("garbage-%d", i))
		if i%(floodSize/valid) == floodSize/valid/2 {
			id := uuid.NewString()
			ids = append(ids, id)
			e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
		}
	}
	published := time.Since(start)
	for _, id := range ids {
		e.waitStatus(id, events.StatusCompleted)
	}
	t.Logf("flood of %d published in %s; %d valid jobs completed %s after the first publish",
		floodSize, published.Round(time.Millisecond), len(ids), time.Since(start).Round(time.Millisecond))
	e.waitIdle()
	rejected, jobs := e.rejections(), e.jobsWithEvents()
	seen := map[string]int{}
	for _, r := range rejected {
		seen[r.MsgID]++
		if r.Subject != events.SubjectPrompt || r.Reason == "" {
			t.Fatalf("rejection %+v", r)
		}
	}
	for i := range floodSize {
		if id := fmt.Sprintf("garbage-%d", i); seen[id] != 1 {
			t.Fatalf("%s rejected %d times, want once (%d rejections in all)", id, seen[id], len(rejected))
		}
	}
	if len(rejected) != floodSize || len(jobs) != valid {
		t.Fatalf("%d rejections (want %d), %d jobs with events (want %d)", len(rejected), floodSize, len(jobs), valid)
	}
}

// Text on jobs.prompt that encoding/json would silently repair (a byte that is
// not UTF-8, an escape of half a surrogate pair) and a user_id with control or
// invisible characters make a job in status error saying so, with the job_id
// and user_id of the request; nothing reaches the LLM.
func TestInvalidTextOnJobsPrompt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	for _, tc := range []struct{ name, body, want, user string }{
		{"raw 0xff", `{"job_id":"%s","user_id":"alice","prompt":"fractions ` + "\xff" + ` grade 5"}`, "prompt is not valid UTF-8", "alice"},
		{"lone surrogate", `{"job_id":"%s","user_id":"alice","prompt":"fractions \ud800"}`, "prompt is not valid UTF-8", "alice"},
		{"bidi override", `{"job_id":"%s","user_id":"alice\u202e","prompt":"fractions"}`, "user_id contains U+202E, an invisible formatting character", "alice\u202e"},
		{"escape in user_id", `{"job_id":"%s","user_id":"alice\u001b[31m","prompt":"fractions"}`, "user_id contains U+001B, a control character", "alice\x1b[31m"},
		{"C1 in user_id", `{"job_id":"%s","user_id":"alice` + "\u0085" + `","prompt":"fractions"}`, "user_id contains U+0085, a control character", "alice\u0085"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			e.publish(fmt.Appendf(nil, tc.body, id), id)
			evs := e.waitStatus(id, events.StatusError)
			if evs[0].Step != events.StepPrompt || evs[0].Error == nil || !strings.Contains(evs[0].Error.Message, tc.want) {
				t.Fatalf("event %+v error %+v, want a rejection saying %q", evs[0], evs[0].Error, tc.want)
			}
			if evs[0].UserID != tc.user {
				t.Fatalf("user_id %q, want the request's %q", evs[0].UserID, tc.user)
			}
		})
	}
	e.waitIdle()
	if n := len(e.llm.Calls()); n != 0 {
		t.Fatalf("%d LLM calls for invalid requests", n)
	}
}

// An invalid request of nearly the stream's 1 MiB keeps, in its error job for
// the retention period, only the first 1 KiB of its prompt (cut on a UTF-8
// boundary, with the size noted) and a bounded user_id and mode; the error
// message quotes no more than a short excerpt of a huge value.
func TestInvalidRequestStoresBoundedPrompt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	long := "a" + strings.Repeat("é", 450<<10) // 921601 bytes; byte 1024 is inside an é
	tests := []struct {
		name              string
		req               events.JobRequest
		prompt, user, why string
	}{
		{"long prompt", events.JobRequest{UserID: "alice", Prompt: long},
			long[:1023] + "… [cut: 921601 bytes in all]", "alice", "prompt is 921601 bytes"},
		{"long mode", events.JobRequest{UserID: "alice", Prompt: "fractions", Mode: strings.Repeat("m", 900<<10)},
			"fractions", "alice", `mode "` + strings.Repeat("m", 64) + `"… (921600 bytes) is not`},
		{"long user", events.JobRequest{UserID: strings.Repeat("u", 900<<10), Prompt: long[:events.MaxPromptBytes-1]},
			long[:1023] + "… [cut: 16383 bytes in all]", strings.Repeat("u", 512) + "… [cut: 921600 bytes in all]", "user_id is longer than 128"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.JobID = uuid.NewString()
			e.submit(tc.req)
			evs := e.waitStatus(tc.req.JobID, events.StatusError)
			j := e.job(tc.req.JobID)
			if j.Prompt != tc.prompt {
				t.Fatalf("stored prompt of %d bytes ends %q, want %d bytes ending %q", len(j.Prompt), tail(j.Prompt), len(tc.prompt), tail(tc.prompt))
			}
			if j.UserID != tc.user || evs[0].UserID != tc.user {
				t.Fatalf("stored user_id of %d bytes, event's of %d, want %d", len(j.UserID), len(evs[0].UserID), len(tc.user))
			}
			if len(j.Mode) > 64 {
				t.Fatalf("stored mode of %d bytes", len(j.Mode))
			}
			if !strings.Contains(j.ErrorMessage, tc.why) || len(j.ErrorMessage) > 256 || len(j.Message) > 256 {
				t.Fatalf("error_message of %d bytes %.300q, want a short one saying %q", len(j.ErrorMessage), j.ErrorMessage, tc.why)
			}
		})
	}
}

func tail(s string) string { return s[max(0, len(s)-40):] }
