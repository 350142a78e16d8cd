package console_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// firefoxPrefs close Firefox's own network traffic (updates, telemetry, captive
// portal and connectivity probes, safe browsing, remote settings, ...): the test
// machine has no internet, and the console needs none of it.
var firefoxPrefs = map[string]any{
	"marionette.port":                                 0, // any free port, written to MarionetteActivePort
	"app.update.auto":                                 false,
	"app.update.enabled":                              false,
	"app.update.disabledForTesting":                   true,
	"app.normandy.enabled":                            false,
	"browser.shell.checkDefaultBrowser":               false,
	"browser.startup.homepage":                        "about:blank",
	"browser.startup.page":                            0,
	"browser.newtabpage.enabled":                      false,
	"browser.aboutwelcome.enabled":                    false,
	"browser.safebrowsing.malware.enabled":            false,
	"browser.safebrowsing.phishing.enabled":           false,
	"browser.safebrowsing.downloads.enabled":          false,
	"browser.safebrowsing.downloads.remote.enabled":   false,
	"browser.safebrowsing.provider.mozilla.updateURL": "",
	"browser.search.update":                           false,
	"browser.region.network.url":                      "",
	"browser.topsites.contile.enabled":                false,
	"datareporting.healthreport.uploadEnabled":        false,
	"datareporting.policy.dataSubmissionEnabled":      false,
	"datareporting.policy.firstRunURL":                "",
	"extensions.update.enabled":                       false,
	"extensions.blocklist.enabled":                    false,
	"extensions.getAddons.cache.enabled":              false,
	"geo.provider.network.url":                        "",
	"media.gmp-manager.updateEnabled":                 false,
	"network.captive-portal-service.enabled":          false,
	"network.connectivity-service.enabled":            false,
	"network.dns.disablePrefetch":                     true,
	"network.prefetch-next":                           false,
	"network.trr.mode":                                5,
	"security.OCSP.enabled":                           0,
	"services.settings.server":                        "http://127.0.0.1:9/remote-settings",
	"toolkit.telemetry.enabled":                       false,
	"toolkit.telemetry.unified":                       false,
	"toolkit.telemetry.archive.enabled":               false,
	"toolkit.telemetry.server":                        "",
	"toolkit.startup.max_resumed_crashes":             -1,
}

// firefox is headless Firefox driven through Marionette, the remote protocol
// built into it: a TCP stream of length-prefixed JSON messages,
// [0, id, command, params] answered by [1, id, error, result]. chromedp cannot
// drive Firefox (it speaks CDP, which Firefox dropped).
type firefox struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	id   int
}

// startFirefox starts Debian's firefox-esr headless with a fresh profile and
// opens a WebDriver session. Without it the test is skipped, unless
// SHEETPIPE_REQUIRE_BROWSER=1 makes it fail.
func startFirefox(t *testing.T) *firefox {
	t.Helper()
	path := ""
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("SHEETPIPE_REQUIRE_BROWSER") == "1" {
			t.Fatal("no firefox-esr on PATH (make test installs Debian's)")
		}
		t.Skip("no firefox-esr on PATH; make test installs it")
	}
	profile := t.TempDir()
	var prefs strings.Builder
	for k, v := range firefoxPrefs {
		js, _ := json.Marshal(v)
		fmt.Fprintf(&prefs, "user_pref(%q, %s);\n", k, js)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(path, "--headless", "--marionette", "--profile", profile, "-no-remote", "--new-instance")
	cmd.Env = append(os.Environ(), "MOZ_HEADLESS=1", "MOZ_CRASHREPORTER_DISABLE=1", "HOME="+profile)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its content processes die with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	f := &firefox{t: t}
	t.Cleanup(func() {
		if f.conn != nil {
			_ = f.conn.SetDeadline(time.Now().Add(10 * time.Second))
			_ = f.send("Marionette:Quit", map[string]any{}, nil)
			f.conn.Close()
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("firefox output:\n%s", out.String())
		}
	})

	// Marionette writes the port it listens on into the profile.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(profile, "MarionetteActivePort")); err == nil {
			if port, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && port > 0 {
				if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second); err == nil {
					f.conn = c
					break
				}
			}
		}
		select {
		case <-exited:
			t.Fatalf("firefox exited before Marionette listened:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Marionette did not listen within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.r = bufio.NewReader(f.conn)
	var hello struct {
		Protocol int `json:"marionetteProtocol"`
	}
	if err := f.read(&hello); err != nil || hello.Protocol != 3 {
		t.Fatalf("Marionette hello: %v (protocol %d)", err, hello.Protocol)
	}
	f.call("WebDriver:NewSession", map[string]any{"capabilities": map[string]any{}}, nil)
	f.call("WebDriver:SetTimeouts", map[string]any{"script": 30000, "pageLoad": 60000}, nil)
	return f
}

func (f *firefox) read(out any) error {
	n, err := f.r.ReadString(':')
	if err != nil {
		return err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
	if err != nil || size < 0 || size > 64<<20 {
		return fmt.Errorf("bad Marionette frame length %q", n)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(f.r, buf); err != nil {
		return err
	}
	return json.Unmarshal(buf, out)
}

// send runs one command and decodes its result into out.
func (f *firefox) send(name string, params, out any) error {
	f.id++
	msg, _ := json.Marshal([]any{0, f.id, name, params})
	if _, err := fmt.Fprintf(f.conn, "%d:%s", len(msg), msg); err != nil {
		return err
	}
	for {
		var reply []json.RawMessage
		if err := f.read(&reply); err != nil {
			return err
		}
		var kind, id int
		if len(reply) != 4 || json.Unmarshal(reply[0], &kind) != nil || kind != 1 || json.Unmarshal(reply[1], &id) != nil {
			return fmt.Errorf("bad Marionette reply %s", reply)
		}
		if id != f.id {
			continue // the answer to a command given up on
		}
		if string(reply[2]) != "null" {
			var e struct{ Error, Message string }
			_ = json.Unmarshal(reply[2], &e)
			return fmt.Errorf("%s: %s: %s", name, e.Error, e.Message)
		}
		if out != nil {
			return json.Unmarshal(reply[3], out)
		}
		return nil
	}
}

func (f *firefox) call(name string, params, out any) {
	f.t.Helper()
	_ = f.conn.SetDeadline(time.Now().Add(90 * time.Second))
	if err := f.send(name, params, out); err != nil {
		f.t.Fatalf("firefox: %v", err)
	}
}

func (f *firefox) navigate(url string) {
	f.t.Helper()
	f.call("WebDriver:Navigate", map[string]any{"url": url}, nil)
}

// js runs script (a function body; arguments in `arguments`) in the page and
// returns its value.
func (f *firefox) js(script string, args ...any) any {
	f.t.Helper()
	if args == nil {
		args = []any{}
	}
	var r struct{ Value any }
	f.call("WebDriver:ExecuteScript", map[string]any{"script": script, "args": args}, &r)
	return r.Value
}

// click clicks the element sel as a user would (WebDriver's element click:
// scrolled into view, hit-tested, real mouse events).
func (f *firefox) click(sel string) {
	f.t.Helper()
	var r struct {
		Value map[string]string
	}
	f.call("WebDriver:FindElement", map[string]any{"using": "css selector", "value": sel}, &r)
	for _, id := range r.Value {
		f.call("WebDriver:ElementClick", map[string]any{"id": id}, nil)
		return
	}
	f.t.Fatalf("firefox: no element reference for %s", sel)
}

// until polls script until it returns true, for at most wait.
func (f *firefox) until(wait time.Duration, what, script string, args ...any) {
	f.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if v, _ := f.js(script, args...).(bool); v {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("firefox: %s not within %s (at %v)", what, wait, f.js("return location.href"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *firefox) text(sel string) string {
	f.t.Helper()
	s, _ := f.js(`const e = document.querySelector(arguments[0]); return e ? e.textContent : null`, sel).(string)
	return s
}

// TestFirefox runs the console in Firefox: a job submitted from the form whose
// prompt is HTML lands on its page, which renders the timeline, the PDF (pdf.js
// in a worker) and the LaTeX editor (CodeMirror); the prompt runs nothing; the
// list links to the job; and the Content-Security-Policy stops inline script.
func TestFirefox(t *testing.T) {
	s := startSheetd(t, "")
	ff := startFirefox(t)
	// The payloads would write to the DOM, which the test's scripts share with
	// the page's whatever sandbox Marionette runs them in.
	prompt := `<script>document.documentElement.dataset.pwned="script"</script><img src=x onerror="document.documentElement.dataset.pwned='img'"> fractions`
	ff.navigate(s.base + "/submit")
	ff.until(30*time.Second, "the submit form", `return !!document.querySelector("#prompt")`)
	ff.js(`document.querySelector("#prompt").value = arguments[0]; document.querySelector("#user_id").value = arguments[1]; return true`, prompt, `<b id="bold">eve</b>`)
	ff.click("#submit")
	ff.until(30*time.Second, "the job page", `return /^\/job\/[0-9a-f-]{36}$/.test(location.pathname)`)
	id := strings.TrimPrefix(ff.js(`return location.pathname`).(string), "/job/")
	ff.until(90*time.Second, "the completed event in the timeline", `return !!document.querySelector('#timeline tr[data-status="completed"]')`)
	steps := ff.js(`return [...document.querySelectorAll("#timeline tr")].map(r => r.dataset.status + "@" + r.children[2].textContent).join(" ")`).(string)
	for _, want := range []string{"running@design", "running@latex", "running@compile", "completed@done"} {
		if !strings.Contains(steps, want) {
			t.Fatalf("timeline %q lacks %s", steps, want)
		}
	}
	ff.until(60*time.Second, "the PDF drawn", `const c = document.querySelector("#pdf canvas.pdf-page"); return !!c && c.width > 100 && c.height > 100`)
	// The canvas holds the page: not one colour (pdf.js drew text on it).
	if ink, _ := ff.js(`const c = document.querySelector("#pdf canvas.pdf-page"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let dark = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) dark++; return dark`).(float64); ink < 50 {
		t.Fatalf("the PDF canvas has %v dark pixels", ink)
	}
	ff.until(30*time.Second, "the LaTeX in CodeMirror", `const e = document.querySelector("#editor .cm-editor .cm-content"); return !!e && e.textContent.includes("\\documentclass{article}")`)
	if got := ff.text("#prompt"); got != prompt {
		t.Fatalf("prompt shown as %q", got)
	}
	check := func(where string) {
		t.Helper()
		if p := ff.js(`return document.documentElement.dataset.pwned ?? null`); p != nil {
			t.Fatalf("%s: user text ran: %v", where, p)
		}
		if n := ff.js(`return document.querySelectorAll("main img, main script, #bold").length`).(float64); n != 0 {
			t.Fatalf("%s: user text made %v elements", where, n)
		}
	}
	check("job page")
	// An inline script inserted into the page does not run: the policy forbids it.
	ff.js(`const s = document.createElement("script"); s.textContent = "document.documentElement.dataset.inline = 1"; document.head.append(s); return true`)
	if v := ff.js(`return document.documentElement.dataset.inline === undefined`); v != true {
		t.Fatal("an inline script ran in Firefox: the Content-Security-Policy is not applied")
	}

	ff.navigate(s.base + "/")
	ff.until(30*time.Second, "the job's row with its link", `return !!document.querySelector('#jobs tr[data-job="' + arguments[0] + '"] a[href="/job/' + arguments[0] + '"]')`, id)
	check("list")
	if st := ff.text(`#jobs tr[data-job="` + id + `"] .status`); st != "completed" {
		t.Fatalf("list shows status %q", st)
	}
	if got := ff.text(`#jobs tr[data-job="` + id + `"] .prompt`); !strings.HasPrefix(got, `<script>document.documentElement`) {
		t.Fatalf("list shows prompt %q", got)
	}
	// The link goes to the job's page without a reload.
	ff.js(`document.documentElement.dataset.same = "1"; return true`)
	ff.click(`#jobs tr[data-job="` + id + `"] a`)
	ff.until(30*time.Second, "the job page from the list", `return location.pathname === "/job/" + arguments[0] && !!document.querySelector("#timeline tr")`, id)
	if v := ff.js(`return document.documentElement.dataset.same === "1"`); v != true {
		t.Fatal("the list's link reloaded the page")
	}
}
