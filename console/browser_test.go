package console_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
