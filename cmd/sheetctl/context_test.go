package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/sheetpipe/sheetpipe/events"
)

// Contexts are saved in $XDG_CONFIG_HOME/sheetctl/config.json (0600 in a 0700
// directory), selected by --context or the current one; flags beat everything,
// an explicit --context beats the environment, the environment beats the
// current context.
func TestContexts(t *testing.T) {
	s := startPipeline(t)
	ctx := testContext(t)
	id := completedJob(ctx, t, newTestClient(t, s))
	dead := closedURL(t)
	home := t.TempDir()
	env := map[string]string{"HOME": home}
	sheetctl := func(env map[string]string, args ...string) result {
		return runSheetctl(ctx, env, "", t.TempDir(), args...)
	}
	deadErr := "sheetctl: connect to " + dead + ": no servers available (is sheetd running?)\n"

	if r := sheetctl(env, "context", "ls"); r.code != exitOK || !strings.HasPrefix(r.stdout, "no contexts") {
		t.Fatalf("context ls without contexts: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r := sheetctl(env, "context", "add", "dead", "--server", dead, "--nats-user", "ada", "--nats-password", "s3cr3t-pw",
		"--api-token", "t0k3n-value", "--description", "nothing listens")
	path := filepath.Join(home, ".config", "sheetctl", "config.json")
	if r.code != exitOK || r.stdout != "context dead added in "+path+"; it is the current one\n" {
		t.Fatalf("context add: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := sheetctl(env, "context", "add", "live", "--server", s.ClientURL()); r.code != exitOK || strings.Contains(r.stdout, "current") {
		t.Fatalf("second context add: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
		if info, err := os.Stat(p); err != nil || info.Mode() != want {
			t.Fatalf("%s: %v %v, want mode %v", p, info.Mode(), err, want)
		}
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		live bool // reaches the pipeline, else the dead context's server
	}{
		{"current context", env, nil, false},
		{"--context", env, []string{"--context", "live"}, true},
		{"--context after the command", env, nil, true}, // args appended below
		{"environment beats the current context", map[string]string{"HOME": home, "NATS_URL": s.ClientURL()}, nil, true},
		{"--context beats the environment", map[string]string{"HOME": home, "NATS_URL": s.ClientURL()}, []string{"--context", "dead"}, false},
		{"--server beats --context", env, []string{"--context", "dead", "--server", s.ClientURL()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.args...), "get", id)
			if tc.name == "--context after the command" {
				args = []string{"get", id, "--context", "live"}
			}
			r := sheetctl(tc.env, args...)
			if tc.live && (r.code != exitOK || !strings.Contains(r.stdout, "completed at done")) ||
				!tc.live && (r.code != exitFailure || r.stderr != deadErr) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}

	// ls shows whether secrets are set, never them.
	r = sheetctl(env, "context", "ls")
	if r.code != exitOK || !strings.Contains(r.stdout, "*        dead  "+dead+"  -      ada        set       -    set    nothing listens") ||
		strings.Contains(r.stdout, "s3cr3t") || strings.Contains(r.stdout, "t0k3n") {
		t.Fatalf("context ls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = sheetctl(env, "--json", "context", "ls")
	var rows []contextJSON
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var c contextJSON
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("context ls --json: %q: %v", l, err)
		}
		rows = append(rows, c)
	}
	if len(rows) != 2 || rows[0] != (contextJSON{Name: "dead", Current: true, Server: dead, NATSUser: "ada", NATSPassword: true, APIToken: true,
		Description: "nothing listens"}) || rows[1].Name != "live" || rows[1].Current || strings.Contains(r.stdout, "s3cr3t") {
		t.Fatalf("context ls --json: %+v\n%s", rows, r.stdout)
	}

	if r := sheetctl(env, "context", "use", "live"); r.code != exitOK || r.stdout != "context live is the current one\n" {
		t.Fatalf("context use: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	want := `{"context":"dead","action":"used","current":"dead","config":"` + path + `"}` + "\n"
	if r := sheetctl(env, "--json", "context", "use", "dead"); r.code != exitOK || r.stdout != want {
		t.Fatalf("context use --json: exit %d %q %q, want %q", r.code, r.stdout, r.stderr, want)
	}
	if r := sheetctl(env, "context", "use", "live"); r.code != exitOK {
		t.Fatalf("context use: exit %d %q", r.code, r.stderr)
	}
	if r := sheetctl(env, "get", id); r.code != exitOK {
		t.Fatalf("get with the current context live: exit %d %q", r.code, r.stderr)
	}
	if r := sheetctl(env, "context", "rm", "live"); r.code != exitOK || r.stdout != "context live removed\n" {
		t.Fatalf("context rm: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := sheetctl(env, "--context", "live", "get", id); r.code != exitUsage || !strings.Contains(r.stderr, `no context "live"`) {
		t.Fatalf("--context of a removed context: exit %d %q", r.code, r.stderr)
	}
	// XDG_CONFIG_HOME wins over HOME.
	xdg := t.TempDir()
	if r := sheetctl(map[string]string{"HOME": home, "XDG_CONFIG_HOME": xdg}, "context", "add", "x", "--server", dead); r.code != exitOK ||
		!strings.Contains(r.stdout, filepath.Join(xdg, "sheetctl", "config.json")) {
		t.Fatalf("context add with XDG_CONFIG_HOME: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestContextRefusals(t *testing.T) {
	ctx := testContext(t)
	home := t.TempDir()
	env := map[string]string{"HOME": home}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", []string{"context"}, exitUsage, "sheetctl: context: context needs add, ls, use or rm"},
		{"unknown subcommand", []string{"context", "list"}, exitUsage, `unknown context command "list"`},
		{"bad name", []string{"context", "add", "../evil", "--server", "nats://x"}, exitUsage, `context name "../evil"`},
		{"add without settings", []string{"context", "add", "empty"}, exitUsage, "context add needs at least one setting"},
		{"use unknown", []string{"context", "use", "nope"}, exitFailure, `sheetctl: no context "nope"`},
		{"flags on use", []string{"context", "use", "nope", "--server", "nats://x"}, exitUsage, "flags are for context add"},
		{"ls with a name", []string{"context", "ls", "x"}, exitUsage, "context ls takes no arguments"},
		{"unknown --context", []string{"--context", "nope", "get", jobID}, exitUsage, `sheetctl: get: no context "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSheetctl(ctx, env, "", t.TempDir(), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stderr %q, want %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(home, ".config")); !os.IsNotExist(err) {
		t.Fatalf("refused commands wrote a config: %v", err)
	}

	// A config file others may read or write is refused, by every command.
	r := runSheetctl(ctx, env, "", t.TempDir(), "context", "add", "a", "--server", "nats://127.0.0.1:1")
	path := filepath.Join(home, ".config", "sheetctl", "config.json")
	if r.code != exitOK {
		t.Fatalf("context add: %d %q", r.code, r.stderr)
	}
	for _, mode := range []os.FileMode{0o644, 0o620} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"get", jobID}, {"context", "ls"}} {
			r := runSheetctl(ctx, env, "", t.TempDir(), args...)
			want := "is open to others (mode " + strings.TrimPrefix(mode.String(), "-")
			if r.code != exitFailure || !strings.Contains(r.stderr, "config "+path+" is open to others") || !strings.Contains(r.stderr, "chmod 600 "+path) {
				t.Fatalf("%v with a config of mode %v: exit %d stderr %q (%s)", args, mode, r.code, r.stderr, want)
			}
		}
	}
}

// The NATS user and password of a context reach the server: a server that
// requires them lets sheetctl in with them (it then finds no sheetd there) and
// refuses it without.
func TestContextCredentials(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, Username: "ada", Password: "s3cr3t", NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	url := ns.ClientURL()
	ctx := testContext(t)
	env := map[string]string{"HOME": t.TempDir()}
	for _, args := range [][]string{
		{"context", "add", "right", "--server", url, "--nats-user", "ada", "--nats-password", "s3cr3t"},
		{"context", "add", "wrong", "--server", url, "--nats-user", "ada", "--nats-password", "guess"},
	} {
		if r := runSheetctl(ctx, env, "", t.TempDir(), args...); r.code != exitOK {
			t.Fatalf("%v: %d %q", args, r.code, r.stderr)
		}
	}
	r := runSheetctl(ctx, env, "", t.TempDir(), "--context", "right", "get", jobID)
	if r.code != exitFailure || !strings.Contains(r.stderr, "no sheetd answers "+events.ControlSubject(events.OpGet)) {
		t.Fatalf("with the context's password: exit %d stderr %q, want connected and no sheetd", r.code, r.stderr)
	}
	r = runSheetctl(ctx, env, "", t.TempDir(), "--context", "wrong", "get", jobID)
	if r.code != exitFailure || !strings.Contains(strings.ToLower(r.stderr), "authorization violation") || strings.Contains(r.stderr, "guess") {
		t.Fatalf("with a wrong password: exit %d stderr %q, want an authorization violation without the password", r.code, r.stderr)
	}
}
