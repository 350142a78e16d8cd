package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// key presses keys (kb.Tab, kb.Enter, " ", kb.Escape, ...) as key events.
func key(t *testing.T, ctx context.Context, keys string) {
	t.Helper()
	do(t, ctx, 10*time.Second, chromedp.KeyEvent(keys))
}

// focused describes the element with the keyboard focus.
func focused(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `(() => { const e = document.activeElement; return e ? e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + (e.getAttribute("href") || "") : "none" })()`)
}

// tabTo presses Tab until sel has the focus, at most n times.
func tabTo(t *testing.T, ctx context.Context, sel string, n int) {
	t.Helper()
	var path []string
	for range n {
		if eval[bool](t, ctx, `!!document.activeElement && document.activeElement.matches(`+jsString(sel)+`)`) {
			return
		}
		key(t, ctx, kb.Tab)
		path = append(path, focused(t, ctx))
	}
	t.Fatalf("%d Tabs did not reach %s; focus went: %s", n, sel, strings.Join(path, " → "))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// focusRing fails unless the focused element draws a visible outline.
func focusRing(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	ring := eval[string](t, ctx, `(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + " " + s.outlineWidth + " " + s.outlineColor })()`)
	style, width, _ := strings.Cut(ring, " ")
	if style == "none" || strings.HasPrefix(width, "0px") {
		t.Fatalf("%s (%s) has focus but no visible outline: %q", what, focused(t, ctx), ring)
	}
}

// Keyboard only: Tab to a job in the list, Enter opens it, Tab to Abort, Space
// opens the confirmation with the focus inside it (and kept there), Escape
// cancels it and gives the focus back, Enter opens it again and Enter confirms.
// Every focused control shows an outline.
func TestKeyboardOnly(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	id := s.submit(map[string]any{"user_id": "ana", "prompt": "SLOW fractions"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.CSS(`#jobs tr[data-job="`+id+`"] a`)))
	tabTo(t, ctx, `#jobs tr[data-job="`+id+`"] a`, 30)
	focusRing(t, ctx, "the job's link")
	key(t, ctx, kb.Enter)
	if got := waitJobPage(t, ctx); got != id {
		t.Fatalf("Enter opened job %s, want %s", got, id)
	}
	visible(t, ctx, 60*time.Second, `#timeline tr[data-status="running"]`)
	tabTo(t, ctx, "#abort", 30)
	focusRing(t, ctx, "the Abort button")

	key(t, ctx, " ")
	visible(t, ctx, 10*time.Second, "dialog[open] #confirm-ok")
	for i := range 6 {
		if !eval[bool](t, ctx, `!!document.activeElement.closest("dialog[open]")`) {
			t.Fatalf("after %d Tabs the focus left the dialog for %s", i, focused(t, ctx))
		}
		focusRing(t, ctx, "a button of the dialog")
		key(t, ctx, kb.Tab)
	}
	key(t, ctx, kb.Escape)
	do(t, ctx, 10*time.Second, chromedp.WaitNotPresent(chromedp.CSS("dialog")))
	if f := focused(t, ctx); f != "button#abort " {
		t.Fatalf("after Escape the focus is on %s, want back on Abort", f)
	}
	if status, _ := jobStatus(t, s, id); status != "running" {
		t.Fatalf("Escape left the job %s", status)
	}

	key(t, ctx, kb.Enter)
	visible(t, ctx, 10*time.Second, "dialog[open] #confirm-ok")
	if f := focused(t, ctx); f != "button#confirm-ok " {
		t.Fatalf("the confirmation opens with the focus on %s, want its confirm button (Enter confirms)", f)
	}
	key(t, ctx, kb.Enter)
	visible(t, ctx, 30*time.Second, `#timeline tr[data-status="aborted"]`)
	if status, _ := jobStatus(t, s, id); status != "aborted" {
		t.Fatalf("job is %s after Enter on the confirmation", status)
	}
}

// poll waits up to wait for the expression js to be true.
func poll(t *testing.T, ctx context.Context, wait time.Duration, js string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, wait+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(wait))); err != nil {
		t.Fatalf("browser: waiting for %s: %v", js, err)
	}
}

// noSideScroll fails when the page is wider than the screen.
func noSideScroll(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	sw := eval[int](t, ctx, `document.scrollingElement.scrollWidth`)
	cw := eval[int](t, ctx, `document.scrollingElement.clientWidth`)
	if sw > cw {
		wide := eval[string](t, ctx, `[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > document.scrollingElement.clientWidth + 1).slice(0, 8).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)).join(", ")`)
		t.Fatalf("%s scrolls sideways on a phone: %d px wide in %d (too wide: %s)", page, sw, cw, wide)
	}
}

// onScreen fails unless sel lies within the screen's width and can be used.
func onScreen(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	ok := eval[bool](t, ctx, `(() => { const e = document.querySelector(`+jsString(sel)+`); if (!e) return false; const r = e.getBoundingClientRect();
		return r.width >= 24 && r.height >= 24 && r.left >= 0 && r.right <= document.scrollingElement.clientWidth && !e.disabled })()`)
	if !ok {
		t.Fatalf("%s is not within the phone's screen (or smaller than a finger)", sel)
	}
}

// On a phone (390×844, mobile): the list and the job page do not scroll
// sideways, the job's actions are on screen and work by touch, and the LaTeX
// editor takes typing.
func TestPhone(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	do(t, ctx, 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2)))
	done := s.submit(map[string]any{"user_id": "ana", "prompt": "A fractions worksheet for grade 5: add, subtract and compare fractions with unlike denominators"})
	id := s.submit(map[string]any{"user_id": "bo", "prompt": "BROKEN geometry: angles in a triangle", "mode": "manual"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.CSS(`#jobs tr[data-job="`+id+`"]`)))
	visible(t, ctx, 90*time.Second, `#jobs tr[data-job="`+done+`"] .st-completed`)
	visible(t, ctx, 90*time.Second, `#jobs tr[data-job="`+id+`"] .st-waiting_manual`)
	noSideScroll(t, ctx, "the list")
	onScreen(t, ctx, `#jobs tr[data-job="`+id+`"] a`)
	screenshot(t, ctx, "console-phone-jobs")

	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/job/"+id))
	visible(t, ctx, 30*time.Second, ".cm-error-line")
	visible(t, ctx, 30*time.Second, "#conversation details")
	noSideScroll(t, ctx, "the job page")
	for _, sel := range []string{"#retry", "#abort", "#download", "#refine-text", "#refine button", "#recompile", "#revert", "#editor .cm-content"} {
		do(t, ctx, 10*time.Second, chromedp.ScrollIntoView(chromedp.CSS(sel)))
		onScreen(t, ctx, sel)
	}
	screenshot(t, ctx, "console-phone-job")
	// The editor takes typing: fix the broken line and recompile, by touch.
	do(t, ctx, 30*time.Second,
		chromedp.ScrollIntoView(chromedp.CSS(".cm-error-line")),
		chromedp.Click(chromedp.CSS(".cm-error-line")),
		chromedp.KeyEvent(kb.End),
		chromedp.KeyEvent(kb.Home, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.KeyEvent("Half: $\\frac{1}{2}$"),
	)
	if ed := text(t, ctx, ".cm-content"); strings.Contains(ed, "notacommand") || !strings.Contains(ed, "Half: $\\frac{1}{2}$") {
		t.Fatalf("editor after typing on the phone: %q", ed)
	}
	noSideScroll(t, ctx, "the job page while editing")
	do(t, ctx, 30*time.Second,
		chromedp.ScrollIntoView(chromedp.CSS("#recompile")),
		chromedp.Click(chromedp.CSS("#recompile")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
	)
	onScreen(t, ctx, "#confirm-ok")
	do(t, ctx, 10*time.Second, chromedp.Click(chromedp.CSS("#confirm-ok")))
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="completed"]`)
	visible(t, ctx, 60*time.Second, `#pdf canvas.pdf-page`)
	noSideScroll(t, ctx, "the job page with its PDF")
	if status, latex := jobStatus(t, s, id); status != "completed" || !strings.Contains(latex, "Half: $\\frac{1}{2}$") {
		t.Fatalf("job %s after the fix on a phone, LaTeX:\n%s", status, latex)
	}
}

// Retry on a job waiting for a manual fix re-runs its failed step; retry on a
// completed job shows the API's refusal plainly.
func TestRetryAndRefusal(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	id := s.submit(map[string]any{"user_id": "ana", "prompt": "BROKEN fractions", "mode": "manual"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/job/"+id))
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="waiting_manual"]`)
	do(t, ctx, 30*time.Second, chromedp.Click(chromedp.CSS("#retry")))
	if _, ok := eval[any](t, ctx, `document.querySelector("dialog[open]")`).(map[string]any); ok {
		do(t, ctx, 10*time.Second, chromedp.Click(chromedp.CSS("#confirm-ok")))
	}
	do(t, ctx, 30*time.Second, chromedp.WaitVisible(chromedp.CSS(`#action-note`)))
	// The retried compile fails again: a second waiting_manual after a new run.
	poll(t, ctx, 90*time.Second, `document.querySelectorAll('#timeline tr[data-status="waiting_manual"]').length >= 2`)
	if note := text(t, ctx, "#action-note"); note != "retry: accepted." {
		t.Fatalf("note %q", note)
	}
	if !eval[bool](t, ctx, `(() => { const s = [...document.querySelectorAll("#timeline tr")].map(r => r.dataset.status); const i = s.indexOf("waiting_manual");
		return i >= 0 && s.slice(i + 1).includes("running") && s.lastIndexOf("waiting_manual") > i })()`) {
		t.Fatalf("no new run after the retry: %s", eval[string](t, ctx, `[...document.querySelectorAll("#timeline tr")].map(r => r.dataset.status).join(" ")`))
	}

	ok := s.submit(map[string]any{"user_id": "ana", "prompt": "A decimals worksheet"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/job/"+ok))
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="completed"]`)
	do(t, ctx, 30*time.Second, chromedp.Click(chromedp.CSS("#retry")))
	if _, isDialog := eval[any](t, ctx, `document.querySelector("dialog[open]")`).(map[string]any); isDialog {
		do(t, ctx, 10*time.Second, chromedp.Click(chromedp.CSS("#confirm-ok")))
	}
	visible(t, ctx, 30*time.Second, "#action-error")
	if msg := text(t, ctx, "#action-error"); !strings.HasPrefix(msg, "409: ") || !strings.Contains(msg, "completed") {
		t.Fatalf("refusal shown as %q", msg)
	}
	if status, _ := jobStatus(t, s, ok); status != "completed" {
		t.Fatalf("refused retry left the job %s", status)
	}
}

// Refine asks for the instruction, confirms, and the job is designed again
// from it; the new design shows on the page.
func TestRefine(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	id := s.submit(map[string]any{"user_id": "ana", "prompt": "A decimals worksheet"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/job/"+id))
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="completed"]`)
	do(t, ctx, 30*time.Second,
		chromedp.SendKeys(chromedp.CSS("#refine-text"), "add three harder questions"),
		chromedp.Click(chromedp.CSS(`#refine button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")),
	)
	poll(t, ctx, 90*time.Second, `document.querySelectorAll('#timeline tr[data-status="completed"]').length >= 2`)
	if note := text(t, ctx, "#action-note"); note != "refine: accepted." {
		t.Fatalf("note %q", note)
	}
	poll(t, ctx, 30*time.Second, `document.querySelector("#design").textContent.includes("add three harder questions")`)
	steps := eval[string](t, ctx, `[...document.querySelectorAll("#timeline tr")].map(r => r.dataset.status + "@" + r.children[2].textContent).join(" ")`)
	if strings.Count(steps, "running@design") < 2 {
		t.Fatalf("no new design after the refine: %s", steps)
	}
}

// Download PDF: the link names the job's PDF, which the API serves as
// application/pdf, and activating it saves the PDF as <job>.pdf; without a PDF
// the refusal is shown.
func TestDownloadPDF(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	id := s.submit(map[string]any{"user_id": "ana", "prompt": "A decimals worksheet"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/job/"+id))
	visible(t, ctx, 90*time.Second, `#timeline tr[data-status="completed"]`)
	visible(t, ctx, 60*time.Second, `#pdf canvas.pdf-page`)
	href := eval[string](t, ctx, `document.querySelector("#download").getAttribute("href")`)
	if href != "/jobs/"+id+"/pdf" {
		t.Fatalf("download link %q", href)
	}
	resp, err := http.Get(s.base + href)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/pdf" {
		t.Fatalf("GET %s: %d %q", href, resp.StatusCode, ct)
	}

	dir := t.TempDir()
	began := make(chan string, 4)
	finished := make(chan string, 4)
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *cdpbrowser.EventDownloadWillBegin:
			began <- ev.SuggestedFilename
		case *cdpbrowser.EventDownloadProgress:
			if ev.State == cdpbrowser.DownloadProgressStateCompleted {
				finished <- ev.GUID
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, 30*time.Second,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: ptr(true),
			})
			return err
		}),
		chromedp.Click(chromedp.CSS("#download")),
	)
	var name, guid string
	select {
	case name = <-began:
	case <-time.After(30 * time.Second):
		t.Fatal("no download began")
	}
	select {
	case guid = <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("the download did not finish")
	}
	if name != id+".pdf" {
		t.Fatalf("downloaded as %q", name)
	}
	data, err := os.ReadFile(filepath.Join(dir, guid))
	if err != nil || !strings.HasPrefix(string(data), "%PDF-") {
		t.Fatalf("downloaded file: %v %.20q", err, data)
	}
	if loc := value(t, ctx, chromedp.Location()); loc != s.base+"/job/"+id {
		t.Fatalf("the download left the page for %s", loc)
	}

	// A job without a PDF: the refusal shows.
	slow := s.submit(map[string]any{"user_id": "ana", "prompt": "SLOW fractions"})
	do(t, ctx, 30*time.Second, chromedp.Navigate(s.base+"/job/"+slow))
	visible(t, ctx, 60*time.Second, `#timeline tr[data-status="running"]`)
	do(t, ctx, 30*time.Second, chromedp.Click(chromedp.CSS("#download")), chromedp.WaitVisible(chromedp.CSS("#action-error")))
	msg := text(t, ctx, "#action-error")
	if !strings.HasPrefix(msg, "404: ") || !strings.Contains(msg, "no PDF yet") {
		t.Fatalf("download without a PDF shown as %q", msg)
	}
	t.Logf("download without a PDF: %s", msg)
}

func ptr[T any](v T) *T { return &v }

// The form takes every field of a request; a batch of JSON lines lands on the
// batch's page, which lists its jobs; a bad line shows the API's refusal.
func TestSubmitFormAndBatch(t *testing.T) {
	s := startSheetd(t, "")
	ctx := browser(t)
	dep := s.submit(map[string]any{"user_id": "ana", "prompt": "A decimals worksheet"})
	do(t, ctx, 30*time.Second,
		chromedp.Navigate(s.base+"/submit"),
		chromedp.WaitVisible(chromedp.CSS("#prompt")),
		chromedp.SendKeys(chromedp.CSS("#prompt"), "BROKEN fractions, part two"),
		chromedp.SetValue(chromedp.CSS("#user_id"), "cy"),
		chromedp.SetValue(chromedp.CSS("#priority"), "high"),
		chromedp.SendKeys(chromedp.CSS("#mode"), "manual"),
		chromedp.SendKeys(chromedp.CSS("#depends_on"), dep),
		chromedp.SendKeys(chromedp.CSS("#max_retries"), "2"),
		chromedp.Click(chromedp.CSS("#submit")),
	)
	id := waitJobPage(t, ctx)
	var j struct {
		UserID     string   `json:"user_id"`
		Priority   string   `json:"priority"`
		Mode       string   `json:"mode"`
		DependsOn  []string `json:"depends_on"`
		MaxRetries int      `json:"max_retries"`
	}
	s.api("GET", "/jobs/"+id, nil, &j)
	if j.UserID != "cy" || j.Priority != "high" || j.Mode != "manual" || len(j.DependsOn) != 1 || j.DependsOn[0] != dep || j.MaxRetries != 2 {
		t.Fatalf("the form submitted %+v", j)
	}
	visible(t, ctx, 30*time.Second, `#jobhead a.dep[href="/job/`+dep+`"]`)

	lines := `{"user_id":"ana","prompt":"Batch one: fractions"}
{"user_id":"bo","prompt":"Batch two: decimals","priority":"low"}
`
	do(t, ctx, 30*time.Second,
		chromedp.Navigate(s.base+"/submit"),
		chromedp.WaitVisible(chromedp.CSS("#batch-lines")),
		chromedp.SetValue(chromedp.CSS("#batch-lines"), `{"user_id":"ana","prompt":"fine"}`+"\n"+`{"user_id":"bo"`),
		chromedp.Click(chromedp.CSS("#batch-submit")),
		chromedp.WaitVisible(chromedp.CSS("#batch-error")),
	)
	if msg := text(t, ctx, "#batch-error"); !strings.HasPrefix(msg, "400: ") {
		t.Fatalf("a bad line shown as %q", msg)
	}
	do(t, ctx, 30*time.Second,
		chromedp.SetValue(chromedp.CSS("#batch-lines"), lines),
		chromedp.SendKeys(chromedp.CSS("#batch-id"), "6f1c2a9e-3b7d-4c8e-9a51-2d4e6f8a0b1c"),
		chromedp.Click(chromedp.CSS("#batch-submit")),
	)
	poll(t, ctx, 30*time.Second, `location.pathname === "/batch/6f1c2a9e-3b7d-4c8e-9a51-2d4e6f8a0b1c"`)
	poll(t, ctx, 60*time.Second, `document.querySelectorAll("#jobs tr[data-job]").length === 2`)
	prompts := eval[string](t, ctx, `[...document.querySelectorAll("#jobs tr .prompt")].map(e => e.textContent).sort().join("|")`)
	if prompts != "Batch one: fractions|Batch two: decimals" {
		t.Fatalf("batch page lists %q", prompts)
	}
	poll(t, ctx, 30*time.Second, `document.querySelector("#batch-summary").textContent.startsWith("2 jobs")`)
}
