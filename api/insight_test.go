package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// insightServer serves the fixture's API with the console's routes.
func insightServer(t *testing.T, f *fixture) string {
	mux := http.NewServeMux()
	f.api.Register(mux)
	f.api.RegisterInsight(mux, f.plane)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func getJSON(t *testing.T, method, url, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

// The console's read routes keep the API's token rules and answer what the
// pipeline did: a job's whole history in order, its conversation, the overview,
// and every job's events from now on.
func TestInsightRoutes(t *testing.T) {
	t.Parallel()
	const token = "tok"
	f := newFixture(t, api.Config{Token: token})
	base := insightServer(t, f)

	id := f.submitHTTP(t, base, token, `{"user_id":"ana","prompt":"fractions"}`)
	for _, path := range []string{"/stats", "/events", "/jobs/" + id + "/history", "/jobs/" + id + "/conversation"} {
		if code := getJSON(t, "GET", base+path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d", path, code)
		}
		if code := getJSON(t, "GET", base+path, "wrong", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d", path, code)
		}
		if code := getJSON(t, "POST", base+path, token, nil); code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d", path, code)
		}
	}
	want := f.waitStatus(t, id, 0, events.StatusCompleted)

	var hist struct {
		Events []events.StatusEvent `json:"events"`
	}
	if code := getJSON(t, "GET", base+"/jobs/"+id+"/history", token, &hist); code != http.StatusOK {
		t.Fatalf("history: %d", code)
	}
	if describe(hist.Events) != describe(want) {
		t.Fatalf("history\n%s\nwant the published events\n%s", describe(hist.Events), describe(want))
	}

	var conv struct {
		JobID    string `json:"job_id"`
		Messages []struct {
			Role, Content string
		} `json:"messages"`
	}
	if code := getJSON(t, "GET", base+"/jobs/"+id+"/conversation", token, &conv); code != http.StatusOK || conv.JobID != id || len(conv.Messages) < 4 {
		t.Fatalf("conversation: %d %+v", code, conv)
	}

	var o events.Overview
	if code := getJSON(t, "GET", base+"/stats", token, &o); code != http.StatusOK {
		t.Fatalf("stats: %d", code)
	}
	if o.Jobs != 1 || o.Statuses[events.StatusCompleted] != 1 || len(o.Queues) != len(events.Queues()) {
		t.Fatalf("overview %+v", o)
	}
	for _, q := range o.Queues {
		if q.Error != "" {
			t.Fatalf("queue %s: %s", q.Consumer, q.Error)
		}
	}

	// Every job's events, from now on: a new job's run arrives in order.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	second := f.submitHTTP(t, base, token, `{"user_id":"bo","prompt":"decimals"}`)
	sc := bufio.NewScanner(resp.Body)
	var got []events.StatusEvent
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev events.StatusEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.JobID == id {
			t.Fatalf("an event of the finished job %s: %+v", id, ev)
		}
		got = append(got, ev)
		if ev.Status == events.StatusCompleted {
			break
		}
	}
	if len(got) < 5 || got[0].JobID != second || got[0].Status != events.StatusPending {
		t.Fatalf("events stream: %s", describe(got))
	}
}

// List pages and filters over HTTP; a bad cursor or filter is a 400.
func TestListPagesOverHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	base := insightServer(t, f)
	ids := map[string]bool{}
	for i := range 5 {
		ids[f.submitHTTP(t, base, "", `{"user_id":"u`+string(rune('0'+i%2))+`","prompt":"Topic `+string(rune('a'+i))+`","priority":"low"}`)] = true
	}
	seen := map[string]bool{}
	next := ""
	for pages := 0; ; pages++ {
		var reply events.ListReply
		if code := getJSON(t, "GET", base+"/jobs?limit=2&priority=low&before="+next, "", &reply); code != http.StatusOK {
			t.Fatalf("list: %d", code)
		}
		if reply.Total != 5 {
			t.Fatalf("total %d", reply.Total)
		}
		for _, j := range reply.Jobs {
			seen[j.JobID] = true
		}
		if next = reply.Next; next == "" {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paged over %d of 5 jobs", len(seen))
	}
	var reply events.ListReply
	if getJSON(t, "GET", base+"/jobs?user_id=u0&text=TOPIC%20C", "", &reply); reply.Total != 1 || reply.Jobs[0].Prompt != "Topic c" {
		t.Fatalf("filtered: %+v", reply)
	}
	for _, q := range []string{"before=zz", "priority=urgent", "text=" + strings.Repeat("x", events.MaxListText+1), "page=2"} {
		if code := getJSON(t, "GET", base+"/jobs?"+q, "", nil); code != http.StatusBadRequest {
			t.Errorf("GET /jobs?%s: %d, want 400", q, code)
		}
	}
}

// On a public address without a token the console's routes are refused like
// /jobs.
func TestInsightRefusedPublicWithoutToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{Public: true})
	base := insightServer(t, f)
	for _, path := range []string{"/stats", "/events"} {
		if code := getJSON(t, "GET", base+path, "", nil); code != http.StatusForbidden {
			t.Errorf("GET %s: %d, want 403", path, code)
		}
	}
}

func (f *fixture) submitHTTP(t *testing.T, base, token, body string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/jobs", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r events.SubmitReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %v", resp.StatusCode, err)
	}
	return r.JobID
}
