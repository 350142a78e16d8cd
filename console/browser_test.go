package console_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

var jobURL = regexp.MustCompile(`/job/([0-9a-f-]{36})$`)

// waitJobPage waits until the browser shows a job's page and returns its id.
func waitJobPage(t *testing.T, ctx context.Context) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		loc := value(t, ctx, chromedp.Location())
		if m := jobURL.FindStringSubmatch(loc); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job page, at %s", loc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// (a) A job submitted from the form: the browser lands on its page, which shows
// each step as it happens (the page was opened while the job was pending and
// is never reloaded) and then the PDF; the list links to the job.
func TestSubmitFromFormFollowsJobLive(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	do(t, ctx, 30*time.Second,
		chromedp.Navigate(s.base+"/submit"),
		chromedp.WaitVisible(chromedp.CSS("#prompt")),
		chromedp.SendKeys(chromedp.CSS("#prompt"), "A fractions worksheet for grade 5"),
		chromedp.SendKeys(chromedp.CSS("#user_id"), "ana"),
		chromedp.Click(chromedp.CSS("#submit")),
	)
	id := waitJobPage(t, ctx)
	screenshot(t, ctx, "console-job-running")
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="completed"]`)
	visible(t, ctx, 60*time.Second, `#pdf canvas.pdf-page`)
	if n := eval[int](t, ctx, `document.querySelectorAll("#timeline tr").length`); n < 5 {
		t.Fatalf("timeline has %d events, want pending, running at design, latex and compile, then completed", n)
	}
	steps := eval[string](t, ctx, `[...document.querySelectorAll("#timeline tr")].map(r => r.dataset.status + "@" + r.children[2].textContent).join(" ")`)
	for _, want := range []string{"running@design", "running@latex", "running@compile", "completed@done"} {
		if !strings.Contains(steps, want) {
			t.Fatalf("timeline %q lacks %s", steps, want)
		}
	}
	if p := text(t, ctx, "#prompt"); p != "A fractions worksheet for grade 5" {
		t.Fatalf("prompt shown %q", p)
	}
	visible(t, ctx, 30*time.Second, "#conversation details")
	if !strings.Contains(text(t, ctx, ".cm-content"), `\documentclass{article}`) {
		t.Fatal("editor does not show the LaTeX")
	}
	screenshot(t, ctx, "console-job")

	do(t, ctx, 30*time.Second,
		chromedp.Navigate(s.base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#jobs tr[data-job="`+id+`"] a[href="/job/`+id+`"]`)),
	)
	if st := text(t, ctx, `#jobs tr[data-job="`+id+`"] .status`); st != "completed" {
		t.Fatalf("list shows status %q", st)
	}
}

// jobStatus reads a job's status and LaTeX through the API.
func jobStatus(t *testing.T, s *sheetd, id string) (status, latex string) {
	t.Helper()
	var j struct {
		Status string `json:"status"`
		Latex  string `json:"latex"`
	}
	s.api("GET", "/jobs/"+id, nil, &j)
	return j.Status, j.Latex
}

// (b) LaTeX that does not compile: the job waits for a manual fix, the editor
// highlights the error line beside the log snippet, the line is fixed by typing
// in the editor, and the recompiled job completes.
func TestFixCompileErrorInEditor(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	id := s.submit(map[string]any{"user_id": "ana", "prompt": "BROKEN fractions", "mode": "manual"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/job/"+id))
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="waiting_manual"]`)
	visible(t, ctx, 30*time.Second, ".cm-error-line")
	if line := text(t, ctx, ".cm-error-line"); line != `\notacommand{1/2}` {
		t.Fatalf("highlighted line %q, want line 4", line)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll(".cm-error-line").length`); n != 1 {
		t.Fatalf("%d highlighted lines", n)
	}
	if sn := text(t, ctx, "#error-snippet"); !strings.Contains(sn, "Undefined control sequence") {
		t.Fatalf("snippet beside the editor: %q", sn)
	}
	screenshot(t, ctx, "console-compile-error")

	do(t, ctx, 30*time.Second,
		chromedp.Click(chromedp.CSS(".cm-error-line")),
		chromedp.KeyEvent(kb.End),
		chromedp.KeyEvent(kb.Home, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.KeyEvent("Half of one: $\\frac{1}{2}$"),
	)
	if ed := text(t, ctx, ".cm-content"); strings.Contains(ed, "notacommand") || !strings.Contains(ed, "Half of one") {
		t.Fatalf("editor after typing: %q", ed)
	}
	do(t, ctx, 30*time.Second,
		chromedp.Click(chromedp.CSS("#recompile")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
	)
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="completed"]`)
	visible(t, ctx, 60*time.Second, `#pdf canvas.pdf-page`)
	status, latex := jobStatus(t, s, id)
	if status != "completed" || !strings.Contains(latex, "Half of one: $\\frac{1}{2}$") || strings.Contains(latex, "notacommand") {
		t.Fatalf("job %s with LaTeX:\n%s", status, latex)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll(".cm-error-line").length`); n != 0 {
		t.Fatalf("%d lines still highlighted after the fix", n)
	}
}

// (c) Abort from the job's page stops a running job; a second abort shows the
// API's refusal (409 and its message) plainly.
func TestAbortRunningJob(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	id := s.submit(map[string]any{"user_id": "ana", "prompt": "SLOW fractions"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/job/"+id))
	visible(t, ctx, 60*time.Second, `#timeline tr[data-status="running"]:last-child`)
	do(t, ctx, 30*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`#timeline tr:last-child td:nth-child(3)`)),
		chromedp.Click(chromedp.CSS("#abort")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
	)
	visible(t, ctx, 30*time.Second, `#timeline tr[data-status="aborted"]`)
	if status, _ := jobStatus(t, s, id); status != "aborted" {
		t.Fatalf("job is %s after abort", status)
	}
	if note := text(t, ctx, "#action-note"); note != "abort: accepted." {
		t.Fatalf("note %q", note)
	}
	do(t, ctx, 30*time.Second,
		chromedp.Click(chromedp.CSS("#abort")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS("#action-error")),
	)
	if msg := text(t, ctx, "#action-error"); !strings.HasPrefix(msg, "409: ") || !strings.Contains(msg, "aborted") {
		t.Fatalf("refusal shown as %q", msg)
	}
}

// (d) With a token set, the console without the token shows the login and no
// data; a wrong token is refused; the right one shows the jobs.
func TestTokenRequired(t *testing.T) {
	s := startSheetd(t, "s3cret-token")
	ctx := browser(t)
	id := s.submit(map[string]any{"user_id": "secret-user", "prompt": "SECRETPROMPT fractions"})
	for _, page := range []string{"/", "/job/" + id, "/overview"} {
		do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+page), chromedp.WaitVisible(chromedp.CSS("#login")))
		body := text(t, ctx, "body")
		for _, secret := range []string{"SECRETPROMPT", "secret-user"} {
			if strings.Contains(body, secret) {
				t.Fatalf("%s without the token shows %q", page, secret)
			}
		}
	}
	screenshot(t, ctx, "console-login")
	do(t, ctx, 30*time.Second,
		chromedp.Navigate(s.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "wrong"),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#login .alert")),
	)
	if msg := text(t, ctx, "#login .alert"); !strings.HasPrefix(msg, "401: ") {
		t.Fatalf("wrong token shown as %q", msg)
	}
	eval[bool](t, ctx, `document.getElementById("token").value = ""; true`)
	do(t, ctx, 30*time.Second,
		chromedp.SendKeys(chromedp.CSS("#token"), "s3cret-token"),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#jobs tr[data-job="`+id+`"]`)),
	)
	if p := text(t, ctx, `#jobs tr[data-job="`+id+`"] .prompt`); !strings.Contains(p, "SECRETPROMPT") {
		t.Fatalf("with the token the list shows %q", p)
	}
}

// (e) A prompt made of HTML shows as text everywhere and runs nothing.
func TestUntrustedTextIsInert(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	prompt := `<script>window.__pwned="script"</script><img src=x onerror="window.__pwned='img'"> fractions`
	do(t, ctx, 30*time.Second,
		chromedp.Navigate(s.base+"/submit"),
		chromedp.WaitVisible(chromedp.CSS("#prompt")),
		chromedp.SetValue(chromedp.CSS("#prompt"), prompt),
		chromedp.SetValue(chromedp.CSS("#user_id"), `<b id="bold">eve</b>`),
		chromedp.Click(chromedp.CSS("#submit")),
	)
	id := waitJobPage(t, ctx)
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="completed"]`)
	visible(t, ctx, 30*time.Second, "#conversation details")
	check := func(where string) {
		t.Helper()
		if p := eval[any](t, ctx, `window.__pwned === undefined ? null : window.__pwned`); p != nil {
			t.Fatalf("%s: user text ran: %v", where, p)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll("main img, main script, #bold").length`); n != 0 {
			t.Fatalf("%s: user text made %d elements", where, n)
		}
	}
	check("job page")
	if got := text(t, ctx, "#prompt"); got != prompt {
		t.Fatalf("prompt shown as %q", got)
	}
	if !strings.Contains(text(t, ctx, "#design"), `<img src=x onerror=`) {
		t.Fatal("design does not show the prompt's text")
	}
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.CSS(`#jobs tr[data-job="`+id+`"]`)))
	check("list")
	if got := text(t, ctx, `#jobs tr[data-job="`+id+`"] .prompt`); !strings.HasPrefix(got, `<script>window.__pwned`) {
		t.Fatalf("list shows prompt %q", got)
	}
}

// The list shows new jobs and status changes without a reload, and the overview
// counts jobs and lists the latest failure.
func TestListAndOverviewLive(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	first := s.submit(map[string]any{"user_id": "ana", "prompt": "A decimals worksheet for grade 4"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.CSS(`#jobs tr[data-job="`+first+`"]`)))
	second := s.submit(map[string]any{"user_id": "bo", "prompt": "BROKEN geometry: angles in a triangle", "mode": "manual", "priority": "high"})
	visible(t, ctx, 30*time.Second, `#jobs tr[data-job="`+second+`"]`)
	visible(t, ctx, 90*time.Second, `#jobs tr[data-job="`+first+`"] .st-completed`)
	visible(t, ctx, 90*time.Second, `#jobs tr[data-job="`+second+`"] .st-waiting_manual`)
	for _, p := range []string{"Fractions: add and subtract like denominators", "Times tables 6 to 9, a timed drill"} {
		s.submit(map[string]any{"user_id": "cy", "prompt": p, "priority": "low"})
	}
	do(t, ctx, 30*time.Second, chromedp.WaitVisible(chromedp.CSS(`#jobs tr:nth-child(4)`)))
	screenshot(t, ctx, "console-jobs")

	do(t, ctx, 30*time.Second,
		chromedp.Navigate(s.base+"/overview"),
		chromedp.WaitVisible(chromedp.CSS(`#overview a[href="/job/`+second+`"]`)),
	)
	if n := text(t, ctx, `#overview tr[data-status="waiting_manual"] td.num`); n != "1" {
		t.Fatalf("overview counts %s jobs waiting_manual", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#overview tr[data-queue]").length`); n < 10 {
		t.Fatalf("overview shows %d queues", n)
	}
	screenshot(t, ctx, "console-overview")
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/submit"), chromedp.WaitVisible(chromedp.CSS("#prompt")))
	screenshot(t, ctx, "console-submit")
}
