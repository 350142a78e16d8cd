package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/sheetpipe/sheetpipe/events"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring of stdout
		stderr string // substring of stderr
	}{
		{"no command", nil, exitUsage, "", "sheetctl: missing command"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `sheetctl: unknown command "frobnicate"`},
		{"unknown global flag", []string{"--bogus", "submit"}, exitUsage, "", "unknown flag: --bogus"},
		{"-h lists the commands", []string{"-h"}, exitOK, "  submit   submit a prompt", ""},
		{"help lists the commands", []string{"help"}, exitOK, "  watch    follow a job", ""},
		{"help of a command", []string{"help", "submit"}, exitOK, "-max-retries n", ""},
		{"command -h", []string{"submit", "-h"}, exitOK, "Usage: sheetctl submit", ""},
		{"help of an unknown command", []string{"help", "nope"}, exitUsage, "", `unknown command "nope"`},
		{"submit without prompt", []string{"submit", "--wait"}, exitUsage, "", "sheetctl: submit: missing prompt"},
		{"submit with prompt and file", []string{"submit", "--file", "p.txt", "a worksheet"}, exitUsage, "", "not both"},
		{"submit blank prompt", []string{"submit", "  "}, exitUsage, "", "prompt is required"},
		{"submit bad mode", []string{"submit", "--mode", "yolo", "a worksheet"}, exitUsage, "", `mode "yolo"`},
		{"submit bad priority", []string{"submit", "--priority", "urgent", "a worksheet"}, exitUsage, "", `priority "urgent"`},
		{"submit bad max retries", []string{"submit", "--max-retries", "11", "a worksheet"}, exitUsage, "", "max_retries 11"},
		{"submit non-numeric max retries", []string{"submit", "--max-retries", "many", "a worksheet"}, exitUsage, "", "-max-retries"},
		{"submit bad job id", []string{"submit", "--job-id", "job-1", "a worksheet"}, exitUsage, "", "not a UUID"},
		{"help lists the exit codes", []string{"help"}, exitOK, "  4  not allowed in the job's state", ""},
		{"help lists every command", []string{"-h"}, exitOK, "  refine   revise a job", ""},
		{"watch two job ids", []string{"watch", jobID, jobID}, exitUsage, "", "sheetctl: watch: watch takes at most one job id"},
		{"watch bad job id", []string{"watch", "job-1"}, exitUsage, "", `job id "job-1" is not a UUID`},
		{"pdf without job id", []string{"pdf"}, exitUsage, "", "sheetctl: pdf: pdf needs one job id"},
		{"get without job id", []string{"get"}, exitUsage, "", "sheetctl: get: get needs one job id"},
		{"get bad job id", []string{"get", "--latex", "job-1"}, exitUsage, "", `sheetctl: get: job id "job-1" is not a UUID`},
		{"edit without file", []string{"edit", jobID}, exitUsage, "", "sheetctl: edit: edit needs a job id and a file"},
		{"edit blank LaTeX", []string{"edit", jobID, "-"}, exitUsage, "", "latex is required and must not be blank"},
		{"edit missing file", []string{"edit", jobID, "/nonexistent/x.tex"}, exitFailure, "", "sheetctl: read LaTeX: open /nonexistent/x.tex"},
		{"retry without job id", []string{"retry", "--wait"}, exitUsage, "", "sheetctl: retry: retry needs one job id"},
		{"refine without instruction", []string{"refine", jobID}, exitUsage, "", "refine needs a job id and an instruction"},
		{"refine blank instruction", []string{"refine", jobID, " "}, exitUsage, "", "instruction is required and must not be blank"},
		{"abort bad job id", []string{"abort", "job-1"}, exitUsage, "", `sheetctl: abort: job id "job-1" is not a UUID`},
		{"list with an argument", []string{"list", "ada"}, exitUsage, "", "sheetctl: list: list takes no arguments"},
		{"list bad status", []string{"list", "--status", "done"}, exitUsage, "", `status "done" is not one of`},
		{"list bad limit", []string{"list", "--limit", "1001"}, exitUsage, "", "limit 1001 is outside 1..1000"},
		{"zero timeout", []string{"--timeout", "0s", "watch", jobID}, exitUsage, "", "--timeout 0s is not a positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSheetctl(testContext(t), nil, "", t.TempDir(), tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, r.stdout)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, r.stderr)
			}
			if tc.code == exitUsage && !strings.Contains(r.stderr, "Usage: sheetctl") {
				t.Errorf("usage error without a usage line:\n%s", r.stderr)
			}
		})
	}
}

func TestConnectFailureNamesTheServer(t *testing.T) {
	url := closedURL(t)
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"from NATS_URL":          {map[string]string{"NATS_URL": url}, []string{"submit", "a worksheet"}},
		"from --server":          {nil, []string{"--server", url, "submit", "a worksheet"}},
		"flag after the command": {nil, []string{"pdf", "--server", url, "6ba7b810-9dad-41d1-80b4-00c04fd430c8"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := runSheetctl(testContext(t), tc.env, "", t.TempDir(), tc.args...)
			want := "sheetctl: connect to " + url + ": no servers available (is sheetd running?)\n"
			if r.code != exitFailure || r.stderr != want {
				t.Fatalf("exit %d stderr %q, want exit 1 and %q", r.code, r.stderr, want)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"invalid", fmt.Errorf("submit: %w", &events.ControlError{Code: events.CodeBadRequest, Message: "bad"}), exitUsage},
		{"unknown job", &events.ControlError{Code: events.CodeNotFound, Message: "no job"}, exitUnknown},
		{"not allowed", &events.ControlError{Code: events.CodeConflict, Message: "it is completed"}, exitState},
		{"service failed", &events.ControlError{Code: events.CodeInternal, Message: "kv down"}, exitFailure},
		{"job ended", &jobEndedError{ev: event(events.StatusAborted, events.StepLatex, "Aborted")}, exitFailure},
		{"other", errors.New("connection refused"), exitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, out := testApp(false)
			if got := a.fail(tc.err); got != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", got, tc.code, out)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                      "nats://127.0.0.1:4222",
		"nats://bob:secret@host:4222":                "nats://bob:xxxxx@host:4222",
		"nats://s3cr3t-token@host:4222,nats://other": "nats://xxxxx@host:4222,nats://other",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseAcceptsFlagsAfterArguments(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wait       bool
		positional []string
	}{
		{"flags first", []string{"--wait", "a", "worksheet"}, true, []string{"a", "worksheet"}},
		{"flags last", []string{"a", "worksheet", "--wait"}, true, []string{"a", "worksheet"}},
		{"flags between", []string{"a", "--wait", "worksheet"}, true, []string{"a", "worksheet"}},
		{"double dash ends flags", []string{"a", "--", "--wait"}, false, []string{"a", "--wait"}},
		{"dash is an argument", []string{"-", "--wait"}, true, []string{"-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &app{stdio: stdio{getenv: func(string) string { return "" }}}
			var (
				wait bool
				got  []string
			)
			root := a.rootCommand()
			root.AddCommand(a.cobraCommand(&command{name: "probe", setup: func(_ *app, fs *pflag.FlagSet) func(context.Context, []string) error {
				fs.BoolVar(&wait, "wait", false, "")
				return func(_ context.Context, args []string) error { got = args; return nil }
			}}))
			root.SetArgs(append([]string{"probe"}, tc.args...))
			if err := root.Execute(); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if wait != tc.wait || strings.Join(got, "|") != strings.Join(tc.positional, "|") {
				t.Fatalf("wait %v positional %q, want %v %q", wait, got, tc.wait, tc.positional)
			}
		})
	}
}
