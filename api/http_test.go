package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// TestHTTP covers what only the HTTP transport has: auth, body limits, content
// types, methods, the PDF and the event stream.
func TestHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{KeepAlive: 20 * time.Millisecond})
	ht := httpTransport{base: f.http.URL}
	completed := submit(t, ht, "u", "fractions")
	aborted := submit(t, ht, "u", "fractions "+markSlow+" http-aborted")
	decode[any](t, ht.do(t, call{op: events.OpAbort, id: aborted}))
	f.waitStatus(t, completed, 0, events.StatusCompleted)
	// The completed job's revision stays put once the meta stage has described it.
	waitUntil(t, "the completed job's description", func() bool { return get(t, ht, completed).Description != "" })

	t.Run("auth", func(t *testing.T) {
		t.Parallel()
		const token = "s3cret-token"
		logs := &syncBuffer{}
		srv := serveHTTP(t, api.New(f.ctl, api.Config{Token: token, Public: true}, slog.New(slog.NewJSONHandler(logs, nil))))
		routes := []struct{ method, path string }{
			{"GET", "/jobs"}, {"POST", "/jobs"}, {"GET", "/jobs/" + completed}, {"POST", "/jobs/" + completed + "/latex"},
			{"POST", "/jobs/" + completed + "/retry"}, {"POST", "/jobs/" + completed + "/refine"},
			{"POST", "/jobs/" + completed + "/abort"}, {"GET", "/jobs/" + completed + "/pdf"}, {"GET", "/jobs/" + completed + "/events"},
			{"POST", "/batches"}, {"GET", "/batches/" + completed}, {"GET", "/batches/" + completed + "/events"},
		}
		for _, rt := range routes {
			for _, bad := range []string{"", "Bearer wrong-token", "Basic " + token, "Bearer"} {
				r := rawRequest(t, srv.URL, rt.method, rt.path, bad)
				if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s %s with Authorization %q: %s, WWW-Authenticate %q", rt.method, rt.path, bad, r, r.header.Get("WWW-Authenticate"))
				}
			}
		}
		if r := (httpTransport{base: srv.URL, token: token}).do(t, call{op: events.OpGet, id: completed}); r.code != http.StatusOK {
			t.Fatalf("get with the token: %s", r)
		}
		if r := (httpTransport{base: srv.URL, token: token}).request(t, "GET", "/jobs/"+completed+"/pdf", "", nil); r.code != http.StatusOK {
			t.Fatalf("pdf with the token: %s", r)
		}
		if l := logs.String(); !strings.Contains(l, `"code":401`) || strings.Contains(l, token) {
			t.Fatalf("auth failures must be logged, the token never:\n%s", l)
		}
	})

	t.Run("public without a token", func(t *testing.T) {
		t.Parallel()
		srv := serveHTTP(t, api.New(f.ctl, api.Config{Public: true}, nil))
		for _, path := range []string{"/jobs", "/jobs/" + completed, "/batches/" + completed} {
			r := rawRequest(t, srv.URL, "GET", path, "")
			if r.code != http.StatusForbidden || !strings.Contains(r.errMessage(t), "SHEETPIPE_API_TOKEN") {
				t.Fatalf("GET %s: %s", path, r)
			}
		}
	})

	t.Run("body over the default limit", func(t *testing.T) {
		t.Parallel()
		body := []byte(`{"user_id": "u", "prompt": "` + strings.Repeat("p", 1<<20) + `"}`)
		if r := ht.request(t, "POST", "/jobs", "", body); r.code != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST /jobs of %d bytes: %s", len(body), r)
		}
		if r := ht.request(t, "POST", "/jobs/"+completed+"/latex", "text/plain", body); r.code != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST latex of %d bytes: %s", len(body), r)
		}
	})

	t.Run("requests the routes refuse", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, method, path, ctype, body string
			code                            int
			message                         string
		}{
			{"wrong method on a job", "DELETE", "/jobs/" + completed, "", "", 405, "use GET, HEAD"},
			{"wrong method on jobs", "PUT", "/jobs", "", "", 405, "use POST, GET, HEAD"},
			{"GET on an operation", "GET", "/jobs/" + completed + "/retry", "", "", 405, "use POST"},
			{"latex as HTML", "POST", "/jobs/" + completed + "/latex", "text/html", goodLatex, 415, "text/plain"},
			{"latex as x-tex reaches the job", "POST", "/jobs/" + aborted + "/latex", "application/x-tex", goodLatex, 409, "it is aborted"},
			{"latex for another job", "POST", "/jobs/" + completed + "/latex", "", `{"job_id": "` + aborted + `", "latex": "x"}`, 400, "not the job"},
			{"refine for another job", "POST", "/jobs/" + completed + "/refine", "", `{"job_id": "` + aborted + `", "instruction": "x"}`, 400, "not the job"},
			{"refine without a body", "POST", "/jobs/" + completed + "/refine", "", "", 400, "not the expected JSON object"},
			{"list limit not a number", "GET", "/jobs?limit=ten", "", "", 400, `limit "ten" is not a whole number`},
			{"list unknown parameter", "GET", "/jobs?state=completed", "", "", 400, `unknown query parameter "state"`},
			{"pdf invalid id", "GET", "/jobs/nope/pdf", "", "", 400, "not a UUID"},
			{"pdf unknown job", "GET", "/jobs/" + uuid.NewString() + "/pdf", "", "", 404, "no job"},
			{"pdf of a job without one", "GET", "/jobs/" + aborted + "/pdf", "", "", 404, "no PDF yet: it is aborted"},
			{"events invalid id", "GET", "/jobs/nope/events", "", "", 400, "not a UUID"},
			{"events unknown job", "GET", "/jobs/" + uuid.NewString() + "/events", "", "", 404, "no job"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var body []byte
				if tc.body != "" {
					body = []byte(tc.body)
				}
				r := ht.request(t, tc.method, tc.path, tc.ctype, body)
				if r.code != tc.code {
					t.Fatalf("got %s, want %d", r, tc.code)
				}
				if tc.code == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
					t.Fatal("405 without Allow")
				}
				if !strings.Contains(r.errMessage(t), tc.message) {
					t.Fatalf("error %q does not say %q", r.errMessage(t), tc.message)
				}
			})
		}
	})

	t.Run("events of a job from submit to completion", func(t *testing.T) {
		t.Parallel()
		id := submit(t, ht, "u", "fractions for the stream")
		s := openEvents(t, f.http.URL, id)
		var got []events.StatusEvent
		for {
			ev, ok := s.next(t)
			if !ok {
				break
			}
			got = append(got, ev)
		}
		t.Logf("stream:%s", describe(got))
		last := got[len(got)-1]
		if last.Status != events.StatusCompleted || last.Step != events.StepDone || last.PDFURL == "" {
			t.Fatalf("stream ended at %s/%s:%s", last.Status, last.Step, describe(got))
		}
		// The stream is the job's history from the state it was in when the stream
		// opened: the events of jobs.status from that revision on. (A Follow built
		// on a watch of the History-1 jobs bucket can miss a state that a quick
		// next write replaced before the watch read it; this check catches that.)
		var bus []events.StatusEvent
		for _, ev := range dedupe(f.waitStatus(t, id, 0, events.StatusCompleted)) {
			if ev.Revision >= got[0].Revision {
				bus = append(bus, ev)
			}
		}
		if len(bus) != len(got) {
			t.Fatalf("stream:%s\njobs.status:%s", describe(got), describe(bus))
		}
		for i := range got {
			if got[i].Revision != bus[i].Revision || got[i].Status != bus[i].Status || got[i].Step != bus[i].Step {
				t.Fatalf("stream event %d differs:%s\njobs.status:%s", i, describe(got), describe(bus))
			}
		}
	})

	t.Run("events of a finished job", func(t *testing.T) {
		t.Parallel()
		s := openEvents(t, f.http.URL, completed)
		ev, ok := s.next(t)
		if !ok || ev.Status != events.StatusCompleted || ev.Revision != get(t, ht, completed).Revision {
			t.Fatalf("first event %+v (%v)", ev, ok)
		}
		if ev, ok := s.next(t); ok {
			t.Fatalf("stream of a completed job goes on with %+v", ev)
		}
	})

	t.Run("events keep alive until the abort", func(t *testing.T) {
		t.Parallel()
		id := submit(t, ht, "u", "fractions "+markSlow+" http-stream")
		f.waitFor(t, id, 0, "running", func(ev events.StatusEvent) bool { return ev.Status == events.StatusRunning })
		s := openEvents(t, f.http.URL, id)
		if ev, ok := s.next(t); !ok || ev.Status != events.StatusRunning {
			t.Fatalf("first event %+v, want the job running", ev)
		}
		s.keepAlive(t)
		decode[any](t, ht.do(t, call{op: events.OpAbort, id: id}))
		if ev, ok := s.next(t); !ok || ev.Status != events.StatusAborted {
			t.Fatalf("event after the abort %+v (%v)", ev, ok)
		}
		if ev, ok := s.next(t); ok {
			t.Fatalf("stream goes on after the abort with %+v", ev)
		}
	})

	t.Run("client going away ends the stream", func(t *testing.T) {
		t.Parallel()
		id := submit(t, ht, "u", "fractions "+markSlow+" http-leave")
		s := openEvents(t, f.http.URL, id)
		if _, ok := s.next(t); !ok {
			t.Fatal("no first event")
		}
		s.close()
		f.waitFollowEnded(t, id, 1)
	})
}

// rawRequest sends a request with the given Authorization header (none when
// empty) and returns the reply.
func rawRequest(t *testing.T, base, method, path, authorization string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := (&http.Client{Timeout: waitLimit}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e events.ErrorReply
	_ = json.NewDecoder(resp.Body).Decode(&e)
	body, _ := json.Marshal(e)
	return result{code: resp.StatusCode, body: body, header: resp.Header}
}

// sseStream reads a server-sent event stream.
type sseStream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openEvents opens GET /jobs/{id}/events, closed when the test ends; every read
// is bounded by waitLimit.
func openEvents(t *testing.T, base, id string) *sseStream {
	t.Helper()
	return openStream(t, base+"/jobs/"+id+"/events")
}

// openStream opens a server-sent event stream at url, closed when the test ends;
// every read is bounded by waitLimit.
func openStream(t *testing.T, url string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET events: %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return s
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// next returns the next status event, skipping comments; false when the stream
// ended. Each event must be exactly id, event and data lines.
func (s *sseStream) next(t *testing.T) (events.StatusEvent, bool) {
	t.Helper()
	fields, ok := s.frame(t)
	if !ok {
		return events.StatusEvent{}, false
	}
	return parseEvent(t, fields), true
}

// frame returns the lines of the next event, skipping comments; false when the
// stream ended.
func (s *sseStream) frame(t *testing.T) ([]string, bool) {
	t.Helper()
	var fields []string
	for {
		line, ok := s.line(t, len(fields) > 0)
		switch {
		case !ok:
			return nil, false
		case strings.HasPrefix(line, ":"):
		case line != "":
			fields = append(fields, line)
		case len(fields) > 0:
			return fields, true
		}
	}
}

// keepAlive reads until a keep-alive comment; an event before it fails the test.
func (s *sseStream) keepAlive(t *testing.T) {
	t.Helper()
	for {
		line, ok := s.line(t, false)
		switch {
		case !ok:
			t.Fatal("stream ended without a keep-alive comment")
		case strings.HasPrefix(line, ": keep-alive"):
			return
		case line != "":
			t.Fatalf("unexpected line %q before a keep-alive comment", line)
		}
	}
}

// line reads one line without its newline; false at the end of the stream,
// which must not come inside an event.
func (s *sseStream) line(t *testing.T, inEvent bool) (string, bool) {
	t.Helper()
	line, err := s.r.ReadString('\n')
	if err != nil {
		if !errors.Is(err, io.EOF) || inEvent || line != "" {
			t.Fatalf("stream read: %v (partial line %q, inside an event: %v)", err, line, inEvent)
		}
		return "", false
	}
	return strings.TrimSuffix(line, "\n"), true
}

func parseEvent(t *testing.T, fields []string) events.StatusEvent {
	t.Helper()
	if len(fields) != 3 || !strings.HasPrefix(fields[0], "id: ") || fields[1] != "event: status" || !strings.HasPrefix(fields[2], "data: ") {
		t.Fatalf("event %q is not id, event: status, data", fields)
	}
	var ev events.StatusEvent
	if err := json.Unmarshal([]byte(strings.TrimPrefix(fields[2], "data: ")), &ev); err != nil {
		t.Fatalf("event data: %v: %q", err, fields[2])
	}
	if id := strings.TrimPrefix(fields[0], "id: "); id != strconv.FormatUint(ev.Revision, 10) {
		t.Fatalf("event id %s, revision %d", id, ev.Revision)
	}
	return ev
}

// dedupe drops repeats of an event (a re-published event reaches core NATS
// subscribers again).
func dedupe(evs []events.StatusEvent) []events.StatusEvent {
	var out []events.StatusEvent
	for _, ev := range evs {
		if len(out) == 0 || ev.Revision > out[len(out)-1].Revision {
			out = append(out, ev)
		}
	}
	return out
}
