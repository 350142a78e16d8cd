package consumers_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

type step struct {
	status events.Status
	step   events.Step
}

func checkSequence(t *testing.T, evs []events.StatusEvent, want []step) {
	t.Helper()
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d:%s", len(evs), len(want), describe(evs))
	}
	for i, w := range want {
		if evs[i].Status != w.status || evs[i].Step != w.step {
			t.Fatalf("event %d is %s/%s, want %s/%s:%s", i, evs[i].Status, evs[i].Step, w.status, w.step, describe(evs))
		}
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Revision <= evs[i-1].Revision || evs[i].Time.Before(evs[i-1].Time) {
			t.Fatalf("events out of order at %d:%s", i, describe(evs))
		}
	}
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("Outline: 1 section of fraction sums", goodLatex, ""))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "teacher-1", Prompt: "a fractions worksheet for grade 5"})
	evs := e.waitStatus(id, events.StatusCompleted)
	checkSequence(t, evs, []step{
		{events.StatusPending, events.StepDesign}, {events.StatusRunning, events.StepDesign},
		{events.StatusPending, events.StepLatex}, {events.StatusRunning, events.StepLatex},
		{events.StatusPending, events.StepCompile}, {events.StatusRunning, events.StepCompile},
		{events.StatusCompleted, events.StepDone},
	})
	last := evs[len(evs)-1]
	if last.PDFURL != "/jobs/"+id+"/pdf" || last.UserID != "teacher-1" || last.MaxRetries != 3 {
		t.Fatalf("completed event %+v", last)
	}
	if pdf := e.pdf(id); !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("pdf starts with %q", pdf[:min(len(pdf), 8)])
	}
	j := e.job(id)
	if j.Design != "Outline: 1 section of fraction sums" || j.Latex != strings.TrimSpace(goodLatex) || j.Status != events.StatusCompleted {
		t.Fatalf("job after completion: status %s design %q", j.Status, j.Design)
	}
	conv, _, err := e.store.Conversation(e.ctx, j.ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range conv.Messages {
		roles = append(roles, m.Role)
	}
	if got := strings.Join(roles, ","); got != "system,user,assistant,user,assistant" {
		t.Fatalf("conversation roles %s", got)
	}
	if conv.Messages[2].Content != j.Design || !strings.Contains(conv.Messages[4].Content, `\documentclass`) {
		t.Fatalf("conversation lacks the design and latex answers: %+v", conv.Messages)
	}
	if n := testutil.ToFloat64(e.metrics.JobsFinished.WithLabelValues("completed")); n != 1 {
		t.Fatalf("jobs_finished_total{completed} = %v", n)
	}
	if n := testutil.ToFloat64(e.metrics.LLMTokens.WithLabelValues("latex", "gpt-4o-mini", "completion")); n != 40 {
		t.Fatalf("llm_tokens_total{latex,completion} = %v", n)
	}
	e.waitIdle()
	if len(e.eventsOf(id)) != len(evs) || e.llm.CallsFor("design") != 1 || e.llm.CallsFor("latex") != 1 {
		t.Fatalf("work after completion: %d events, %d design calls, %d latex calls",
			len(e.eventsOf(id)), e.llm.CallsFor("design"), e.llm.CallsFor("latex"))
	}
}

func TestFixLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", brokenLatex, goodLatex))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	checkSequence(t, evs[4:], []step{
		{events.StatusPending, events.StepCompile}, {events.StatusRunning, events.StepCompile},
		{events.StatusWaitingAIFix, events.StepCompile}, {events.StatusRunning, events.StepCompile},
		{events.StatusPending, events.StepCompile}, {events.StatusRunning, events.StepCompile},
		{events.StatusCompleted, events.StepDone},
	})
	fixEv := evs[6]
	if fixEv.Error == nil || fixEv.Error.Line != 5 || !strings.Contains(fixEv.Error.Message, "Undefined control sequence") {
		t.Fatalf("waiting_ai_fix event error %+v", fixEv.Error)
	}
	if j := e.job(id); j.RetryCount != 1 || j.Latex != strings.TrimSpace(goodLatex) {
		t.Fatalf("retry_count %d, latex fixed %v", j.RetryCount, j.Latex == strings.TrimSpace(goodLatex))
	}
	fixCalls := 0
	for _, c := range e.llm.Calls() {
		if c.Step != "fix" {
			continue
		}
		fixCalls++
		msg := c.LastUser()
		if !strings.Contains(msg, "Undefined control sequence") || !strings.Contains(msg, "5") || !strings.Contains(msg, `\notacommand`) {
			t.Fatalf("fix request lacks the error, its line or the source:\n%s", msg)
		}
		if len(c.Messages) < 6 {
			t.Fatalf("fix request is not in the job's conversation: %d messages", len(c.Messages))
		}
	}
	if fixCalls != 1 {
		t.Fatalf("%d fix calls, want 1", fixCalls)
	}
}

func TestFixCapReached(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", brokenLatex, brokenLatex))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions", MaxRetries: intp(2)})
	evs := e.waitStatus(id, events.StatusWaitingManual)
	last := evs[len(evs)-1]
	if last.Message != "Max retries exceeded" || last.RetryCount != 2 || last.Error == nil || last.Error.Line != 5 {
		t.Fatalf("final event %+v error %+v", last, last.Error)
	}
	j := e.job(id)
	if j.ErrorLog == nil || j.ErrorLog.Line != 5 || !strings.Contains(j.ErrorLog.Snippet, "notacommand") || j.ErrorLog.Log == "" {
		t.Fatalf("error_log %+v", j.ErrorLog)
	}
	if !strings.HasPrefix(j.ErrorMessage, "Max retries exceeded") {
		t.Fatalf("error_message %q", j.ErrorMessage)
	}
	e.waitIdle()
	if n := e.llm.CallsFor("fix"); n != 2 {
		t.Fatalf("%d fix calls, want 2", n)
	}
	if n := len(e.eventsOf(id)); n != len(evs) {
		t.Fatalf("%d events after waiting_manual, want %d", n, len(evs))
	}
}

func TestFailedFixCallWaitsManual(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "outline"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: brokenLatex}),
		"fix":    fakellm.Script(fakellm.Reply{Status: 500, Content: "model overloaded"}),
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusWaitingManual)
	if last := evs[len(evs)-1]; last.Message != "AI fix failed" {
		t.Fatalf("final event %+v", last)
	}
	if j := e.job(id); !strings.HasPrefix(j.ErrorMessage, "AI fix failed") {
		t.Fatalf("error_message %q", j.ErrorMessage)
	}
}

func TestManualModeSkipsFix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", brokenLatex, goodLatex))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions", Mode: events.ModeManual})
	evs := e.waitStatus(id, events.StatusWaitingManual)
	if last := evs[len(evs)-1]; last.Error == nil || last.Error.Line != 5 {
		t.Fatalf("final event %+v", last)
	}
	if n := e.llm.CallsFor("fix"); n != 0 {
		t.Fatalf("%d fix calls in manual mode", n)
	}
}

func TestCleansFencedAndChattyAnswers(t *testing.T) {
	t.Parallel()
	answers := map[string]string{
		"fenced":        "```latex\n" + goodLatex + "```\n",
		"chatty":        "Sure! Here is your worksheet:\n\n" + goodLatex + "\nLet me know if you want changes.",
		"fenced chatty": "Here you go:\n```tex\n" + goodLatex + "```\nEnjoy!",
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, steps("```\noutline\n```", answer, ""))
			id := uuid.NewString()
			e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
			e.waitStatus(id, events.StatusCompleted)
			j := e.job(id)
			if !strings.HasPrefix(j.Latex, `\documentclass`) || !strings.HasSuffix(strings.TrimSpace(j.Latex), `\end{document}`) {
				t.Fatalf("stored latex not cleaned:\n%s", j.Latex)
			}
			if j.Design != "outline" {
				t.Fatalf("stored design not cleaned: %q", j.Design)
			}
		})
	}
}

func TestTransientLLMErrorsThenSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Status: 500}, fakellm.Reply{Status: 429}, fakellm.Reply{Content: "outline"}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex}),
	}))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusCompleted)
	var retries []int
	for _, ev := range evs {
		if ev.Status == events.StatusError {
			retries = append(retries, ev.RetryCount)
			if ev.Step != events.StepDesign || ev.Error == nil || ev.Error.Message == "" {
				t.Fatalf("error event %+v", ev)
			}
		}
	}
	if len(retries) != 2 || retries[0] != 1 || retries[1] != 2 {
		t.Fatalf("error events with retry counts %v, want [1 2]:%s", retries, describe(evs))
	}
	if n := testutil.ToFloat64(e.metrics.Retries.WithLabelValues("design")); n != 2 {
		t.Fatalf("retries_total{design} = %v", n)
	}
	if j := e.job(id); j.RetryCount != 0 {
		t.Fatalf("retry budget not renewed after the step succeeded: %d", j.RetryCount)
	}
}

func TestLLMFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reply    fakellm.Reply
		retries  int
		message  string
		attempts int
	}{
		{"transient until the cap", fakellm.Reply{Status: 503}, 2, "Max retries exceeded", 3},
		{"permanent refusal", fakellm.Reply{Status: 401, Content: "bad key"}, 3, "LLM request refused; fix the configuration and retry", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{"design": fakellm.Script(tc.reply)}))
			id := uuid.NewString()
			e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions", MaxRetries: intp(tc.retries)})
			evs := e.waitStatus(id, events.StatusWaitingManual)
			last := evs[len(evs)-1]
			if last.Message != tc.message || last.Error == nil || last.Error.Message == "" {
				t.Fatalf("final event %+v", last)
			}
			parkedLeavesActive(e, id)
			e.waitIdle()
			if n := e.llm.CallsFor("design"); n != tc.attempts {
				t.Fatalf("%d design calls, want %d", n, tc.attempts)
			}
		})
	}
}

func TestServiceRetryBudgetZero(t *testing.T) {
	t.Parallel()
	zero := 0
	e := newEnv(t, fakellm.ByStep(map[string]fakellm.Handler{"design": fakellm.Script(fakellm.Reply{Status: 503})}),
		func(c *testpipeline.Setup) { c.Control.MaxRetries = &zero })
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	evs := e.waitStatus(id, events.StatusWaitingManual)
	if evs[0].MaxRetries != 0 || e.llm.CallsFor("design") != 1 {
		t.Fatalf("max_retries %d, %d design calls; a service budget of 0 means one attempt", evs[0].MaxRetries, e.llm.CallsFor("design"))
	}
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  events.JobRequest
		want string
	}{
		{"blank prompt", events.JobRequest{UserID: "u", Prompt: " \n\t "}, "prompt is required"},
		{"empty prompt", events.JobRequest{UserID: "u"}, "prompt is required"},
		{"oversized prompt", events.JobRequest{UserID: "u", Prompt: strings.Repeat("a", events.MaxPromptBytes+1)}, "more than the 16384 allowed"},
		{"no user", events.JobRequest{Prompt: "fractions"}, "user_id is required"},
		{"long user", events.JobRequest{UserID: strings.Repeat("u", 129), Prompt: "fractions"}, "user_id is longer than 128"},
		{"max retries too high", events.JobRequest{UserID: "u", Prompt: "fractions", MaxRetries: intp(11)}, "max_retries 11 is outside 0..10"},
		{"negative max retries", events.JobRequest{UserID: "u", Prompt: "fractions", MaxRetries: intp(-1)}, "max_retries -1"},
		{"unknown mode", events.JobRequest{UserID: "u", Prompt: "fractions", Mode: "yolo"}, `mode "yolo"`},
	}
	typed := []struct{ name, body, want string }{
		{"user_id a number", `{"job_id":"%s","user_id":5,"prompt":"fractions"}`, "user_id must be a string, not number"},
		{"max_retries text", `{"job_id":"%s","user_id":"u","prompt":"fractions","max_retries":"3"}`, "max_retries must be a number, not string"},
		{"prompt a number", `{"prompt":5,"user_id":"u","job_id":"%s"}`, "prompt must be a string, not number"},
	}
	e := newEnv(t, steps("outline", goodLatex, ""))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.JobID = uuid.NewString()
			e.submit(tc.req)
			evs := e.waitStatus(tc.req.JobID, events.StatusError)
			checkSequence(t, evs, []step{{events.StatusError, events.StepPrompt}})
			j := e.job(tc.req.JobID)
			if !strings.HasPrefix(evs[0].Message, "Rejected: ") || strings.Contains(evs[0].Message, "invalid request") {
				t.Fatalf("event message %q", evs[0].Message)
			}
			if !strings.Contains(j.ErrorMessage, tc.want) || evs[0].Error == nil || !strings.Contains(evs[0].Error.Message, tc.want) {
				t.Fatalf("error_message %q, want it to contain %q", j.ErrorMessage, tc.want)
			}
		})
	}
	for _, tc := range typed {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			e.publish([]byte(fmt.Sprintf(tc.body, id)), "")
			evs := e.waitStatus(id, events.StatusError)
			if evs[0].Error == nil || !strings.Contains(evs[0].Error.Message, tc.want) {
				t.Fatalf("error %+v, want it to contain %q", evs[0].Error, tc.want)
			}
			if tc.name != "user_id a number" && evs[0].UserID != "u" {
				t.Fatalf("user_id %q lost from the error job", evs[0].UserID)
			}
		})
	}
	e.waitIdle()
	if n := len(e.llm.Calls()); n != 0 {
		t.Fatalf("%d LLM calls for invalid requests", n)
	}
}

func TestMalformedMessagesAreRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	bad := []struct{ name, data, msgID string }{
		{"not json", "fractions please", "m1"},
		{"json array", `["a"]`, "m2"},
		{"bad job id", `{"job_id": "../../etc", "user_id": "u", "prompt": "p"}`, "m4"},
		{"urn job id", `{"job_id": "urn:uuid:0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10", "user_id": "u", "prompt": "p"}`, "m5"},
		{"braced job id", `{"job_id": "{0b6f8f3e-8b0a-4a53-9f53-3f2f3c1e2a10}", "user_id": "u", "prompt": "p"}`, "m6"},
		{"empty", "", ""},
	}
	for _, b := range bad {
		e.publish([]byte(b.data), b.msgID)
	}
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"})
	e.waitStatus(id, events.StatusCompleted)

	rejected := e.rejections()
	jobs := len(e.jobsWithEvents())
	if len(rejected) != len(bad) || jobs != 1 {
		t.Fatalf("%d rejections (want %d), %d jobs with events (want 1): %+v", len(rejected), len(bad), jobs, rejected)
	}
	seen := map[string]bool{}
	for i, r := range rejected {
		if r.Subject != events.SubjectPrompt || r.Reason == "" {
			t.Fatalf("rejection %d: %+v", i, r)
		}
		seen[r.MsgID] = true
	}
	for _, b := range bad {
		if !seen[b.msgID] {
			t.Fatalf("no rejection for %s (msg_id %q): %+v", b.name, b.msgID, rejected)
		}
	}
	// Requests only: the valid job's meta ticket may still be on its way.
	stream, err := e.nats.JS.Stream(e.ctx, events.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(e.ctx, jetstream.WithSubjectFilter("jobs.>"))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for subject, count := range info.State.Subjects {
		if subject == events.SubjectPrompt || strings.HasPrefix(subject, events.SubjectPrompt+".") {
			n += count
		}
	}
	if n != 0 {
		t.Fatalf("%d messages left in JOBS: malformed messages must be terminated, not retried", n)
	}
}

func TestDuplicateRequestCreatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	id := uuid.NewString()
	req := events.JobRequest{JobID: id, UserID: "u", Prompt: "fractions"}
	e.submit(req)
	e.waitStatus(id, events.StatusCompleted)
	// The same job id again, past the dedupe window (another message id).
	data := []byte(`{"job_id":"` + id + `","user_id":"someone-else","prompt":"other"}`)
	e.publish(data, "again-"+id)
	e.waitIdle()
	if n := e.llm.CallsFor("design"); n != 1 {
		t.Fatalf("%d design calls, want 1", n)
	}
	if j := e.job(id); j.UserID != "u" || j.Status != events.StatusCompleted {
		t.Fatalf("job changed by duplicate: %+v", j)
	}
	if n := len(e.eventsOf(id)); n != 7 {
		t.Fatalf("%d events, want 7", n)
	}
}

func TestUpperCaseJobIDIsNormalised(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	id := uuid.NewString()
	e.publish([]byte(`{"job_id":"`+strings.ToUpper(id)+`","user_id":"u","prompt":"fractions"}`), "")
	e.waitStatus(id, events.StatusCompleted)
	if j := e.job(id); j.ID != id {
		t.Fatalf("job stored as %q, want %q", j.ID, id)
	}
}

func TestRequestWithoutJobIDGetsOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t, steps("outline", goodLatex, ""))
	e.publish([]byte(`{"user_id":"u","prompt":"fractions"}`), "")
	e.fx.Events.WaitFor(t, testpipeline.DefaultTimeout, "an event of the request without job_id", func(s testpipeline.Seen) bool { return len(s.Jobs) > 0 })
	id := e.jobsWithEvents()[0]
	parsed, err := uuid.Parse(id)
	if err != nil || parsed.Version() != 4 {
		t.Fatalf("assigned job id %q is not a UUIDv4 (%v)", id, err)
	}
	e.waitStatus(id, events.StatusCompleted)
}

func TestHostileLatexLeaksNothing(t *testing.T) {
	t.Parallel()
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Skip("no /etc/passwd to protect")
	}
	firstLine := strings.SplitN(string(passwd), "\n", 2)[0]
	hostile := "\\documentclass{article}\n\\begin{document}\n\\input{/etc/passwd}\n\\immediate\\write18{touch " + t.TempDir() + "/pwned}\n\\end{document}\n"
	e := newEnv(t, steps("outline", hostile, hostile))
	id := uuid.NewString()
	e.submit(events.JobRequest{JobID: id, UserID: "u", Prompt: "x", MaxRetries: intp(0)})
	evs := e.waitFor(id, "final status", func(ev events.StatusEvent) bool { return events.FinishedStatus(ev.Status) })
	j := e.job(id)
	all := j.Latex + describe(evs) + j.ErrorMessage
	if j.ErrorLog != nil {
		all += j.ErrorLog.Log + j.ErrorLog.Snippet
	}
	if strings.Contains(all, firstLine) {
		t.Fatalf("/etc/passwd content leaked into the job")
	}
}
