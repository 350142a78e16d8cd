package api_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/ai"
	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// TestUsageOfAUser: GET /usage and sheetpipe.usage answer a user's totals
// over a period from the daily counters: today's are the sum of the usage of
// the user's jobs (as get shows it), a day before counts when the period
// includes it, another user's jobs never count; bad queries are refused
// with 400 like every other request.
func TestUsageOfAUser(t *testing.T) {
	t.Parallel()
	fx := testpipeline.New(t, testpipeline.Options{
		LLM: fakellm.ByStep(map[string]fakellm.Handler{
			"design": fakellm.Script(fakellm.Reply{Content: "outline", PromptTokens: 11, CompletionTokens: 13}),
			"latex":  fakellm.Script(fakellm.Reply{Content: goodLatex, PromptTokens: 17, CompletionTokens: 19}),
			"meta":   fakellm.Script(fakellm.Reply{Content: "a worksheet", PromptTokens: 2, CompletionTokens: 3}),
		}),
		Config: []func(*testpipeline.Setup){func(s *testpipeline.Setup) {
			s.Pipeline.Prices = ai.Prices{"gpt-4o-mini": {Input: 0.15, Output: 0.60}}
		}},
		Timeout: waitLimit,
	})
	a := api.New(fx.Plane, api.Config{}, nil)
	if err := a.StartMicro(fx.NATS.NC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	base := serveHTTP(t, a).URL

	ids := map[string]string{uuid.NewString(): "ann", uuid.NewString(): "ann", uuid.NewString(): "bob"}
	for id, user := range ids {
		if _, err := fx.Plane.Submit(fx.Ctx, events.JobRequest{JobID: id, UserID: user, Prompt: "fractions"}); err != nil {
			t.Fatal(err)
		}
	}
	var ann events.Totals
	for id := range ids {
		fx.WaitStatus(t, id, events.StatusCompleted)
	}
	fx.WaitIdle(t)
	for id, user := range ids {
		j := waitDescribed(t, fx, id)
		// get shows the job's usage, over HTTP and NATS alike.
		var got events.Versioned
		if code := getJSON(t, http.MethodGet, base+"/jobs/"+id, "", &got); code != http.StatusOK || got.Usage == nil || got.Usage.Totals != j.Usage.Totals {
			t.Fatalf("GET /jobs/%s: %d, usage %+v, want %+v", id, code, got.Usage, j.Usage)
		}
		if j.Usage.Calls != 4 || j.Usage.Tokens() != 11+13+17+19+2*(2+3) {
			t.Fatalf("job usage %+v", j.Usage)
		}
		if user == "ann" {
			ann.Add(j.Usage.Totals)
		}
	}
	// A count of ann's from yesterday, as the pipeline wrote it then.
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	old := events.Totals{PromptTokens: 1000, CompletionTokens: 500, Calls: 3, CostUSD: 0.5}
	if err := fx.Store.CountUsage(fx.Ctx, "ann", yesterday, uuid.NewString(), []kvstore.UsageItem{{Seq: 1, Totals: old}}); err != nil {
		t.Fatal(err)
	}
	both := ann
	both.Add(old)
	today, yday := time.Now().UTC().Format(events.DayLayout), yesterday.Format(events.DayLayout)

	for _, tc := range []struct {
		name  string
		query url.Values
		want  events.Totals
		since string
	}{
		{"default period", url.Values{"user_id": {"ann"}}, both, time.Now().UTC().AddDate(0, 0, -29).Format(events.DayLayout)},
		{"today", url.Values{"user_id": {"ann"}, "since": {today}}, ann, today},
		{"yesterday", url.Values{"user_id": {"ann"}, "since": {yday}, "until": {yesterday.Format(time.RFC3339)}}, old, yday},
		{"a user without jobs", url.Values{"user_id": {"carol"}}, events.Totals{}, ""},
	} {
		var h events.UsageReply
		if code := getJSON(t, http.MethodGet, base+"/usage?"+tc.query.Encode(), "", &h); code != http.StatusOK {
			t.Fatalf("%s: GET /usage: %d", tc.name, code)
		}
		q := events.UsageQuery{UserID: tc.query.Get("user_id"), Since: tc.query.Get("since"), Until: tc.query.Get("until")}
		data, _ := json.Marshal(q)
		msg, err := fx.NATS.NC.Request(events.ControlSubject(events.OpUsage), data, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var n events.UsageReply
		if err := json.Unmarshal(msg.Data, &n); err != nil {
			t.Fatalf("%s: sheetpipe.usage %s: %v", tc.name, msg.Data, err)
		}
		for _, r := range []events.UsageReply{h, n} {
			if r.UserID != q.UserID || !sameTotals(r.Totals, tc.want) || (tc.since != "" && r.Since != tc.since) {
				t.Errorf("%s: usage %+v, want %+v since %s", tc.name, r, tc.want, tc.since)
			}
		}
	}

	for _, bad := range []string{"", "user_id=ann&sinc=2026-01-01", "user_id=ann&since=yesterday",
		"user_id=ann&since=2026-02-01&until=2026-01-01", "user_id=ann&since=2020-01-01&until=2026-01-01", "user_id=ann&user_id=bob"} {
		resp, err := http.Get(base + "/usage?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET /usage?%s: %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
	for _, bad := range []string{`{"user_id":"ann","sinc":"2026-01-01"}`, `{"since":"2026-01-01"}`, `{"user_id":"ann","until":"tomorrow"}`} {
		msg, err := fx.NATS.NC.Request(events.ControlSubject(events.OpUsage), []byte(bad), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get("Nats-Service-Error-Code") != "400" {
			t.Errorf("sheetpipe.usage %s: %s %s, want 400", bad, msg.Header.Get("Nats-Service-Error-Code"), msg.Data)
		}
	}
}

func sameTotals(a, b events.Totals) bool {
	return a.PromptTokens == b.PromptTokens && a.CompletionTokens == b.CompletionTokens && a.Calls == b.Calls &&
		math.Abs(a.CostUSD-b.CostUSD) < 1e-12
}

// waitDescribed waits until the meta stage described job id (its calls are
// counted then) and returns it.
func waitDescribed(t *testing.T, fx *testpipeline.Fixture, id string) *events.Job {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		j := fx.Job(t, id)
		if j.LatexSeq != 0 && j.MetaSeq == j.LatexSeq {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not described (meta_error %q)", id, j.MetaError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
