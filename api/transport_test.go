package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sheetpipe/sheetpipe/events"
)

// call is one control request, sent the way each transport sends it.
type call struct {
	op     string         // events.Op*
	id     string         // job id: in the body over NATS, in the path over HTTP
	fields map[string]any // the rest of the JSON body; the query of GET /jobs
	raw    []byte         // when set, the whole body as is
	ctype  string         // HTTP Content-Type of the body; default application/json
}

// result is a reply as the client sees it.
type result struct {
	code   int // the HTTP status; over NATS the error code header, 200 without it
	body   []byte
	header http.Header // HTTP only
}

func (r result) ok() bool { return r.code/100 == 2 }

func (r result) String() string { return fmt.Sprintf("%d %s", r.code, bytes.TrimSpace(r.body)) }

// errMessage is the {"error"} of a failed reply.
func (r result) errMessage(t *testing.T) string {
	t.Helper()
	var e events.ErrorReply
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("error reply %s is not JSON {\"error\": ...}", r)
	}
	return e.Error
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if !r.ok() {
		t.Fatalf("request failed: %s", r)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("reply %s is not a %T: %v", r, v, err)
	}
	return v
}

type transport interface {
	name() string
	do(t *testing.T, c call) result
}

// transports are the API's two: NATS micro on a client connection, and HTTP.
func (f *fixture) transports() []transport {
	return []transport{natsTransport{f.client}, httpTransport{base: f.http.URL}}
}

type natsTransport struct{ nc *nats.Conn }

func (natsTransport) name() string { return "nats" }

func (n natsTransport) do(t *testing.T, c call) result {
	t.Helper()
	body := c.raw
	if body == nil {
		m := maps.Clone(c.fields)
		if m == nil {
			m = map[string]any{}
		}
		if c.id != "" {
			m["job_id"] = c.id
		}
		if c.op != events.OpList || len(m) > 0 {
			body = mustJSON(t, m)
		}
	}
	return n.request(t, events.ControlSubject(c.op), body)
}

// request sends body to subject and checks micro's error headers against the
// JSON error body.
func (n natsTransport) request(t *testing.T, subject string, body []byte) result {
	t.Helper()
	msg, err := n.nc.Request(subject, body, waitLimit)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	r := result{code: http.StatusOK, body: msg.Data}
	code := msg.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return r
	}
	if r.code, err = strconv.Atoi(code); err != nil {
		t.Fatalf("%s header %q is not a number", micro.ErrorCodeHeader, code)
	}
	if desc := msg.Header.Get(micro.ErrorHeader); desc == "" || desc != r.errMessage(t) {
		t.Fatalf("%s header %q differs from the body %s", micro.ErrorHeader, desc, msg.Data)
	}
	return r
}

type httpTransport struct {
	base  string
	token string
}

func (httpTransport) name() string { return "http" }

func (h httpTransport) do(t *testing.T, c call) result {
	t.Helper()
	body := c.raw
	if body == nil && c.fields != nil {
		body = mustJSON(t, c.fields)
	}
	path := "/jobs/" + url.PathEscape(c.id)
	switch c.op {
	case events.OpSubmit:
		return h.request(t, http.MethodPost, "/jobs", c.ctype, body)
	case events.OpGet:
		return h.request(t, http.MethodGet, path, "", nil)
	case events.OpList:
		q := url.Values{}
		for k, v := range c.fields {
			q.Set(k, fmt.Sprint(v))
		}
		return h.request(t, http.MethodGet, "/jobs?"+q.Encode(), "", nil)
	}
	return h.request(t, http.MethodPost, path+"/"+c.op, c.ctype, body)
}

func (h httpTransport) request(t *testing.T, method, path, ctype string, body []byte) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", cmpOr(ctype, "application/json"))
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := (&http.Client{Timeout: waitLimit}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := result{code: resp.StatusCode, body: data, header: resp.Header}
	if !r.ok() {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: error %s with Content-Type %q, want JSON", method, path, r, ct)
		}
		r.errMessage(t)
	}
	return r
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// submit submits a valid request over tr and returns the job id.
func submit(t *testing.T, tr transport, userID, prompt string) string {
	t.Helper()
	r := tr.do(t, call{op: events.OpSubmit, fields: map[string]any{"user_id": userID, "prompt": prompt}})
	return decode[events.SubmitReply](t, r).JobID
}

// get returns the job as tr's get answers it.
func get(t *testing.T, tr transport, id string) events.Versioned {
	t.Helper()
	return decode[events.Versioned](t, tr.do(t, call{op: events.OpGet, id: id}))
}
