package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr error
	}{
		{"object", `{"user_id":"u","prompt":"p"}`, nil},
		{"leading space", "  \n{\"user_id\":\"u\",\"prompt\":\"p\"}", nil},
		{"unknown field", `{"user_id":"u","prompt":"p","extra":1}`, ErrInvalid},
		{"empty", ``, ErrMalformed},
		{"text", `fractions please`, ErrMalformed},
		{"array", `[{"user_id":"u"}]`, ErrMalformed},
		{"string", `"hello"`, ErrMalformed},
		{"null", `null`, ErrMalformed},
		{"truncated", `{"user_id":"u"`, ErrMalformed},
		{"wrong type", `{"user_id":5,"prompt":"p"}`, ErrInvalid},
		{"max_retries text", `{"user_id":"u","prompt":"p","max_retries":"3"}`, ErrInvalid},
		{"job_id a number", `{"job_id":123,"user_id":"u","prompt":"p"}`, ErrMalformed},
		{"duplicate garbage", `{"user_id":"u"}{"x":1}`, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.data))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("DecodeRequest(%q) = %v, want %v", tc.data, err, tc.wantErr)
			}
		})
	}
}

func TestDecodeKeepsWhoAndWhichOnTypeErrors(t *testing.T) {
	for _, data := range []string{
		`{"job_id":"0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10","user_id":"alice","prompt":5}`,
		`{"prompt":5,"user_id":"alice","job_id":"0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"}`,
	} {
		req, err := DecodeRequest([]byte(data))
		if !errors.Is(err, ErrInvalid) || req.UserID != "alice" || req.JobID != "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10" {
			t.Fatalf("DecodeRequest(%s) = %+v, %v; want ErrInvalid keeping user_id and job_id", data, req, err)
		}
	}
}

func TestValidate(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		name    string
		req     JobRequest
		want    string // substring of the error; "" for valid
		retries int
		mode    string
	}{
		{"defaults", JobRequest{UserID: "u", Prompt: "p"}, "", 3, ModeAuto},
		{"explicit", JobRequest{UserID: "u", Prompt: "p", MaxRetries: n(0), Mode: ModeManual}, "", 0, ModeManual},
		{"max prompt", JobRequest{UserID: "u", Prompt: strings.Repeat("é", MaxPromptBytes/2)}, "", 3, ModeAuto},
		{"upper-case id", JobRequest{JobID: "0B6F8F3E-8B0A-4A53-9F53-3F2F3C1E2A10", UserID: "u", Prompt: "p"}, "", 3, ModeAuto},
		{"bad id", JobRequest{JobID: "nope", UserID: "u", Prompt: "p"}, "job_id \"nope\" is not a UUID", 0, ""},
		{"no user", JobRequest{Prompt: "p"}, "user_id is required", 0, ""},
		{"long user", JobRequest{UserID: strings.Repeat("ü", 129), Prompt: "p"}, "longer than 128", 0, ""},
		{"128-rune user", JobRequest{UserID: strings.Repeat("ü", 128), Prompt: "p"}, "", 3, ModeAuto},
		{"blank prompt", JobRequest{UserID: "u", Prompt: "\t \n"}, "must not be blank", 0, ""},
		{"oversized", JobRequest{UserID: "u", Prompt: strings.Repeat("a", MaxPromptBytes+1)}, "16385 bytes", 0, ""},
		{"bad utf8", JobRequest{UserID: "u", Prompt: "a\xffb"}, "not valid UTF-8", 0, ""},
		{"retries high", JobRequest{UserID: "u", Prompt: "p", MaxRetries: n(11)}, "outside 0..10", 0, ""},
		{"retries negative", JobRequest{UserID: "u", Prompt: "p", MaxRetries: n(-1)}, "outside 0..10", 0, ""},
		{"bad mode", JobRequest{UserID: "u", Prompt: "p", Mode: "fast"}, `mode "fast"`, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			err := req.Validate(DefaultMaxRetries)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if *req.MaxRetries != tc.retries || req.Mode != tc.mode {
					t.Fatalf("defaults: max_retries %d mode %q", *req.MaxRetries, req.Mode)
				}
				if req.JobID != strings.ToLower(req.JobID) {
					t.Fatalf("job id not normalised: %q", req.JobID)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDecodeTicket(t *testing.T) {
	tests := []struct {
		name string
		data string
		ok   bool
	}{
		{"valid", `{"job_id":"j","stage":"design","seq":1}`, true},
		{"unknown stage", `{"job_id":"j","stage":"print","seq":1}`, false},
		{"no seq", `{"job_id":"j","stage":"design"}`, false},
		{"no job", `{"stage":"design","seq":1}`, false},
		{"not json", `design`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := DecodeTicket([]byte(tc.data))
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrMalformed)) {
				t.Fatalf("DecodeTicket(%s) = %+v, %v", tc.data, tk, err)
			}
			if tc.ok && tk.MsgID() != "j:design:1" {
				t.Fatalf("MsgID %q", tk.MsgID())
			}
		})
	}
}

func TestStatusEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 28, 13, 0, 0, 123456789, time.FixedZone("x", 3600))
	ev := StatusEvent{JobID: "j", UserID: "u", Status: StatusCompleted, Step: StepDone, Message: "PDF ready",
		MaxRetries: 3, PDFURL: "/jobs/j/pdf", Revision: 9, Time: at}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"job_id", "user_id", "status", "step", "message", "retry_count", "max_retries", "pdf_url", "revision", "time"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("event JSON lacks %q: %s", k, b)
		}
	}
	if _, ok := m["error"]; ok {
		t.Fatalf("event without error has an error field: %s", b)
	}
	if m["time"] != "2026-11-28T12:00:00.123456789Z" {
		t.Fatalf("time %v, want RFC 3339 with nanoseconds in UTC", m["time"])
	}
	var back StatusEvent
	if err := json.Unmarshal(b, &back); err != nil || !back.Time.Equal(at) || back.Status != StatusCompleted {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"u","prompt":"p"}`,
		`{"job_id":"0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10","user_id":"u","prompt":"p","max_retries":3,"mode":"auto"}`,
		`{"user_id":"","prompt":" "}`, `[]`, `null`, `{"max_retries":-5}`, "{\"prompt\":\"\xff\"}", ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode error is neither ErrMalformed nor ErrInvalid: %v", err)
			}
			return
		}
		if err := req.Validate(DefaultMaxRetries); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("validate error is not ErrInvalid: %v", err)
			}
			return
		}
		if strings.TrimSpace(req.Prompt) == "" || len(req.Prompt) > MaxPromptBytes || !utf8.ValidString(req.Prompt) ||
			req.UserID == "" || *req.MaxRetries < 0 || *req.MaxRetries > MaxRetriesCap {
			t.Fatalf("invalid request accepted: %+v", req)
		}
		// Nothing accepted was silently repaired: the JSON text was UTF-8, and a
		// U+FFFD in the prompt was sent as one, not made from a bad byte or escape.
		lower := strings.ToLower(string(data))
		if !utf8.Valid(data) || strings.Contains(req.Prompt, "\uFFFD") &&
			!strings.Contains(lower, "\uFFFD") && !strings.Contains(lower, `\ufffd`) {
			t.Fatalf("request accepted with its text repaired: %q became %+v", data, req)
		}
		for _, r := range req.UserID {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
				t.Fatalf("user_id %q with %U accepted", req.UserID, r)
			}
		}
	})
}

func TestValidateRoadmapFields(t *testing.T) {
	self := "0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10"
	dep := "1B6F8F3E-8B0A-4A53-9F53-3F2F3C1E2A10"
	cases := []struct {
		name string
		req  JobRequest
		want string // "" when valid
	}{
		{"defaults", JobRequest{}, ""},
		{"high", JobRequest{Priority: "high"}, ""},
		{"unknown priority", JobRequest{Priority: "urgent"}, `priority "urgent" is not`},
		{"dependency", JobRequest{DependsOn: []string{dep}}, ""},
		{"bad dependency", JobRequest{DependsOn: []string{"x"}}, `depends_on[0] "x" is not a job id`},
		{"self dependency", JobRequest{JobID: self, DependsOn: []string{self}}, "cannot depend on itself"},
		{"twice", JobRequest{DependsOn: []string{dep, strings.ToLower(dep)}}, "twice"},
		{"too many", JobRequest{DependsOn: make([]string, MaxDependencies+1)}, "more than the 16 allowed"},
		{"webhook", JobRequest{WebhookURL: "https://hooks.example.com/sheetpipe"}, ""},
		{"webhook scheme", JobRequest{WebhookURL: "ftp://example.com/x"}, "must start with http"},
		{"webhook relative", JobRequest{WebhookURL: "/hook"}, "must start with http"},
		{"webhook credentials", JobRequest{WebhookURL: "https://u:p@example.com/"}, "credentials"},
		{"webhook long", JobRequest{WebhookURL: "https://example.com/" + strings.Repeat("a", 2048)}, "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.req
			r.UserID, r.Prompt = "u", "a worksheet"
			err := r.Validate(3)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if r.Priority == "" {
					t.Fatalf("priority not defaulted")
				}
				for _, d := range r.DependsOn {
					if d != strings.ToLower(d) {
						t.Fatalf("dependency %s not normalised", d)
					}
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestQueues(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range Queues() {
		if seen[q.Subject()] || seen["durable:"+q.Durable()] {
			t.Fatalf("queue %+v repeats a subject or name", q)
		}
		seen[q.Subject()], seen["durable:"+q.Durable()] = true, true
	}
	if q := TicketQueue(StageDesign, PriorityHigh); q.Subject() != "jobs.design.high" || q.Durable() != "design_high" {
		t.Fatalf("high design queue %s %s", q.Subject(), q.Durable())
	}
	if q := TicketQueue(StageCompile, ""); q.Subject() != "jobs.compile" || q.Durable() != "compile" {
		t.Fatalf("default compile queue %s %s", q.Subject(), q.Durable())
	}
	if q := TicketQueue(StagePrompt, PriorityLow); q.Subject() != "jobs.prompt" {
		t.Fatalf("prompt queue %s", q.Subject())
	}
}
