package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// TestNoLostUpdate: a change based on a revision the job has left is refused
// (409 with the job's current revision) and changes nothing, over both
// transports; ten concurrent edits on one revision give one winner.
func TestNoLostUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	for _, tr := range f.transports() {
		t.Run(tr.name(), func(t *testing.T) {
			t.Run("ten edits on one revision", func(t *testing.T) { t.Parallel(); testConcurrentEdits(t, f, tr) })
			t.Run("stale retry refine abort", func(t *testing.T) { t.Parallel(); testStaleChanges(t, f, tr) })
		})
	}
	t.Run("If-Match", func(t *testing.T) { t.Parallel(); testIfMatch(t, f) })
}

// describedJob submits a job and waits until it completed and the meta stage
// described it: nothing writes it after that.
func describedJob(t *testing.T, f *fixture, tr transport, tag string) events.Versioned {
	t.Helper()
	id := submit(t, tr, "u", "fractions "+tag)
	f.waitStatus(t, id, 0, events.StatusCompleted)
	waitUntil(t, "the job's description", func() bool { return get(t, tr, id).Description != "" })
	return get(t, tr, id)
}

// staleRevision is the revision of a 409 refusing a stale change.
func staleRevision(t *testing.T, r result) uint64 {
	t.Helper()
	var e events.ErrorReply
	if r.code != http.StatusConflict || json.Unmarshal(r.body, &e) != nil || !strings.Contains(e.Error, events.ErrStale.Error()) || e.Revision == 0 {
		t.Fatalf("reply %s, want 409 {\"error\": %q..., \"revision\": n}", r, events.ErrStale)
	}
	return e.Revision
}

func testConcurrentEdits(t *testing.T, f *fixture, tr transport) {
	base := describedJob(t, f, tr, "race-"+tr.name())
	const n = 10
	results := make([]result, n)
	docs := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		docs[i] = strings.Replace(goodLatex, `\end{document}`, fmt.Sprintf("Edit %d.\n\\end{document}", i), 1)
		wg.Go(func() {
			<-start
			results[i] = tr.do(t, call{op: events.OpLatex, id: base.ID, fields: map[string]any{"latex": docs[i], "if_revision": base.Revision}})
		})
	}
	close(start)
	wg.Wait()

	won := -1
	for i, r := range results {
		if r.ok() {
			if won >= 0 {
				t.Fatalf("two edits on revision %d both answered %d: %d and %d", base.Revision, r.code, won, i)
			}
			won = i
		}
	}
	if won < 0 {
		t.Fatalf("no edit won: %s", results[0])
	}
	winner := decode[events.Versioned](t, results[won])
	if winner.Latex != docs[won] || winner.Revision <= base.Revision {
		t.Fatalf("winner replied revision %d, latex %q", winner.Revision, winner.Latex)
	}
	for i, r := range results {
		if i == won {
			continue
		}
		// The compile stage may have taken the winner's edit before a loser read the job again.
		if rev := staleRevision(t, r); rev < winner.Revision {
			t.Fatalf("losing edit %d: current revision %d, want at least the winner's %d", i, rev, winner.Revision)
		}
	}
	f.waitStatus(t, base.ID, winner.Revision, events.StatusCompleted)
	if g := get(t, tr, base.ID); g.Latex != docs[won] {
		t.Fatalf("the job compiled %q, want the winner's edit %q", g.Latex, docs[won])
	}
}

func testStaleChanges(t *testing.T, f *fixture, tr transport) {
	old := describedJob(t, f, tr, "stale-"+tr.name())
	// A broken edit moves the job on: it waits for the user at a new revision.
	edited := decode[events.Versioned](t, tr.do(t, call{op: events.OpLatex, id: old.ID,
		fields: map[string]any{"latex": brokenLatex, "if_revision": old.Revision}}))
	f.waitStatus(t, old.ID, edited.Revision, events.StatusWaitingManual)
	now := get(t, tr, old.ID)

	fields := func(op string, rev uint64) map[string]any {
		m := map[string]any{"if_revision": rev}
		switch op {
		case events.OpRefine:
			m["instruction"] = "harder"
		case events.OpLatex:
			m["latex"] = goodLatex
		}
		return m
	}
	for _, op := range []string{events.OpRetry, events.OpRefine, events.OpAbort, events.OpLatex} {
		for _, rev := range []uint64{old.Revision, edited.Revision} {
			if got := staleRevision(t, tr.do(t, call{op: op, id: old.ID, fields: fields(op, rev)})); got != now.Revision {
				t.Fatalf("%s on revision %d: 409 names revision %d, want %d", op, rev, got, now.Revision)
			}
		}
		if r := tr.do(t, call{op: op, id: old.ID, fields: fields(op, 0)}); r.code != http.StatusBadRequest || !strings.Contains(r.errMessage(t), "if_revision 0") {
			t.Fatalf("%s with if_revision 0: %s, want 400", op, r)
		}
	}
	after := get(t, tr, old.ID)
	if after.Revision != now.Revision || after.Status != events.StatusWaitingManual || after.Latex != brokenLatex || after.RevisedPrompt != "" {
		t.Fatalf("stale changes changed the job: revision %d -> %d, %s, latex %q", now.Revision, after.Revision, after.Status, after.Latex)
	}
	if evs := f.eventsOf(old.ID); evs[len(evs)-1].Revision != now.Revision {
		t.Fatalf("an event follows the stale changes:%s", describe(evs))
	}
	// On the current revision the same retry works.
	r := decode[events.Versioned](t, tr.do(t, call{op: events.OpRetry, id: old.ID, fields: map[string]any{"if_revision": now.Revision}}))
	if r.Status != events.StatusPending || r.Revision <= now.Revision {
		t.Fatalf("retry on the current revision: %s at %d", r.Status, r.Revision)
	}
}

// headerRequest is a POST of body to path with extra headers.
func headerRequest(t *testing.T, base, path, ctype string, body []byte, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := (&http.Client{Timeout: waitLimit}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{code: resp.StatusCode, body: data, header: resp.Header}
}

// If-Match carries the revision over HTTP as the ETag GET answers, or bare; it
// must agree with a body's if_revision; what is not a revision is a 400.
func testIfMatch(t *testing.T, f *fixture) {
	ht := httpTransport{base: f.http.URL}
	j := describedJob(t, f, ht, "if-match")
	r := ht.do(t, call{op: events.OpGet, id: j.ID})
	etag := r.header.Get("ETag")
	if etag != `"`+strconv.FormatUint(j.Revision, 10)+`"` {
		t.Fatalf("GET /jobs/{id}: ETag %q, want the revision %d quoted", etag, j.Revision)
	}
	path := "/jobs/" + j.ID + "/latex"
	stale := `"` + strconv.FormatUint(j.Revision-1, 10) + `"`
	for name, tc := range map[string]struct {
		ctype  string
		body   string
		header string
		code   int
		msg    string
	}{
		"stale ETag":            {"text/plain", brokenLatex, stale, http.StatusConflict, "changed since"},
		"stale bare":            {"text/plain", brokenLatex, strconv.FormatUint(j.Revision-1, 10), http.StatusConflict, "changed since"},
		"header and body":       {"application/json", `{"latex": "x", "if_revision": ` + strconv.FormatUint(j.Revision+1, 10) + `}`, etag, http.StatusBadRequest, "If-Match names revision"},
		"weak":                  {"text/plain", brokenLatex, "W/" + etag, http.StatusBadRequest, "not a job revision"},
		"zero":                  {"text/plain", brokenLatex, "0", http.StatusBadRequest, "not a job revision"},
		"negative":              {"text/plain", brokenLatex, "-3", http.StatusBadRequest, "not a job revision"},
		"list":                  {"text/plain", brokenLatex, etag + ", " + stale, http.StatusBadRequest, "not a job revision"},
		"words":                 {"text/plain", brokenLatex, "latest", http.StatusBadRequest, "not a job revision"},
		"retry stale, no body":  {"", "", stale, http.StatusConflict, "changed since"},
		"abort stale, JSON":     {"application/json", `{"if_revision": 1}`, "", http.StatusConflict, "changed since"},
		"abort bad body":        {"application/json", `{"if_revision": "1"}`, "", http.StatusBadRequest, "not the expected JSON"},
		"abort other body type": {"text/plain", `if_revision=1`, "", http.StatusUnsupportedMediaType, "Content-Type"},
	} {
		p := path
		switch {
		case strings.HasPrefix(name, "retry"):
			p = "/jobs/" + j.ID + "/retry"
		case strings.HasPrefix(name, "abort"):
			p = "/jobs/" + j.ID + "/abort"
		}
		got := headerRequest(t, f.http.URL, p, tc.ctype, []byte(tc.body), map[string]string{"If-Match": tc.header})
		if got.code != tc.code || !strings.Contains(got.errMessage(t), tc.msg) {
			t.Fatalf("%s: %s, want %d with %q", name, got, tc.code, tc.msg)
		}
		if tc.code == http.StatusConflict && staleRevision(t, got) != j.Revision {
			t.Fatalf("%s: 409 names revision %d, want %d", name, staleRevision(t, got), j.Revision)
		}
	}
	if g := get(t, ht, j.ID); g.Revision != j.Revision {
		t.Fatalf("refused changes wrote the job: revision %d -> %d", j.Revision, g.Revision)
	}

	// The ETag sent back works, and so does the same revision in both places.
	edited := headerRequest(t, f.http.URL, path, "application/json",
		[]byte(`{"latex": `+strconv.Quote(brokenLatex)+`, "if_revision": `+strconv.FormatUint(j.Revision, 10)+`}`), map[string]string{"If-Match": etag})
	v := decode[events.Versioned](t, edited)
	if v.Latex != brokenLatex || edited.header.Get("ETag") != `"`+strconv.FormatUint(v.Revision, 10)+`"` {
		t.Fatalf("edit with a matching If-Match: %s, ETag %q", edited, edited.header.Get("ETag"))
	}
	f.waitStatus(t, j.ID, v.Revision, events.StatusWaitingManual)
	now := get(t, ht, j.ID)
	if r := headerRequest(t, f.http.URL, "/jobs/"+j.ID+"/abort", "", nil, map[string]string{"If-Match": "*"}); !r.ok() {
		t.Fatalf("abort with If-Match *: %s", r)
	} else if a := decode[events.Versioned](t, r); a.Status != events.StatusAborted || a.Revision <= now.Revision {
		t.Fatalf("abort with If-Match *: %s at %d", a.Status, a.Revision)
	}
}
