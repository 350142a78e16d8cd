package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
)

// TestUsageCommandAndGet: sheetctl get shows a job's LLM usage (in all and by
// step), get --json has it as "usage", and sheetctl usage --user shows the
// user's totals, which are the job's; usage without --user is a usage error.
func TestUsageCommandAndGet(t *testing.T) {
	s := testpipeline.StartWith(t, fakellm.ByStep(map[string]fakellm.Handler{
		"design": fakellm.Script(fakellm.Reply{Content: "A fractions worksheet: ten exercises.", PromptTokens: 100, CompletionTokens: 20}),
		"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex, PromptTokens: 300, CompletionTokens: 40}),
		"meta":   fakellm.Script(fakellm.Reply{Content: "fractions"}),
	}))
	ctx := testContext(t)
	c := newTestClient(t, s)
	id := completedJob(ctx, t, c)
	run := func(args ...string) result {
		return runSheetctl(ctx, nil, "", t.TempDir(), append([]string{"--server", s.ClientURL()}, args...)...)
	}

	r := run("get", id)
	for _, want := range []string{"usage     460 tokens (400 prompt, 60 completion), ", "  design  120 tokens (100 prompt, 20 completion), 1 calls, $0.000000\n",
		"  latex   340 tokens (300 prompt, 40 completion), 1 calls"} {
		if r.code != exitOK || !strings.Contains(r.stdout, want) {
			t.Fatalf("get: exit %d\n%s\nwant it to contain %q", r.code, r.stdout, want)
		}
	}
	r = run("get", "--json", id)
	var j events.Versioned
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.Usage == nil || j.Usage.Steps["latex"].PromptTokens != 300 {
		t.Fatalf("get --json: %v\n%s", err, r.stdout)
	}

	r = run("usage", "--user", "ada", "--json")
	var u events.UsageReply
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil || r.code != exitOK || u.UserID != "ada" ||
		u.PromptTokens != j.Usage.PromptTokens || u.CompletionTokens != j.Usage.CompletionTokens || u.Calls != j.Usage.Calls {
		t.Fatalf("usage --json: exit %d %v\n%s\nwant the job's %+v", r.code, err, r.stdout, j.Usage.Totals)
	}
	r = run("usage", "--user", "ada")
	if r.code != exitOK || !strings.Contains(r.stdout, "user    ada\n") || !strings.Contains(r.stdout, "usage   "+usageText(j.Usage.Totals)+"\n") {
		t.Fatalf("usage: exit %d\n%s", r.code, r.stdout)
	}
	if r := run("usage"); r.code == exitOK || !strings.Contains(r.stderr, "usage needs --user") {
		t.Fatalf("usage without --user: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run("usage", "--user", "ada", "--since", "last week"); r.code == exitOK || !strings.Contains(r.stderr, `since "last week" is not a date`) {
		t.Fatalf("usage with a bad date: exit %d, stderr %q", r.code, r.stderr)
	}
}
