package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/control"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testpipeline"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// limitsFixture is a pipeline whose stages after prompt do not run until the
// test starts them, so that the jobs it submits stay unfinished; the API of its
// control plane is served over NATS and HTTP.
type limitsFixture struct {
	fx    *testpipeline.Fixture
	plane *control.Plane
	nats  natsTransport
	http  httpTransport
}

func newLimitsFixture(t *testing.T, cfg control.Config) *limitsFixture {
	t.Helper()
	fx := testpipeline.New(t, testpipeline.Options{
		LLM: newScript().handle, LLMTimeout: 2 * waitLimit, Timeout: waitLimit, Idle: true,
		Config: []func(*testpipeline.Setup){func(s *testpipeline.Setup) {
			s.Control.MaxQueued, s.Control.MaxQueuedPerUser, s.Control.RecountEvery = cfg.MaxQueued, cfg.MaxQueuedPerUser, cfg.RecountEvery
		}},
	})
	pr := fx.StartProcess(events.StagePrompt)
	a := api.New(pr.Plane, api.Config{}, nil)
	if err := a.StartMicro(fx.NATS.NC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	srv := serveHTTP(t, a)
	client, err := nats.Connect(fx.NATS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return &limitsFixture{fx: fx, plane: pr.Plane, nats: natsTransport{client}, http: httpTransport{base: srv.URL}}
}

// runRest starts the stages after prompt: the jobs submitted go on to the end.
func (f *limitsFixture) runRest() {
	f.fx.StartProcess(events.StageDesign, events.StageLatex, events.StageCompile, events.StageFix, events.StageMeta)
}

// publish sends a request on jobs.prompt and waits for its job's first event.
func (f *limitsFixture) publish(t *testing.T, user, prompt string) events.StatusEvent {
	t.Helper()
	id := uuid.NewString()
	data := mustJSON(t, map[string]any{"job_id": id, "user_id": user, "prompt": prompt})
	if _, err := f.fx.NATS.JS.Publish(f.fx.Ctx, events.SubjectPrompt, data, jetstream.WithMsgID(id)); err != nil {
		t.Fatalf("publish on %s: %v", events.SubjectPrompt, err)
	}
	f.fx.Events.WaitFor(t, waitLimit, "first event of job "+id, func(s testpipeline.Seen) bool { return len(s.Of(id)) > 0 })
	return f.fx.Events.Of(id)[0]
}

// storedJobs counts the jobs in bucket jobs.
func (f *limitsFixture) storedJobs(t *testing.T) int {
	t.Helper()
	n := 0
	if err := f.fx.Store.EachJob(f.fx.Ctx, func(string, *events.Job, uint64, error) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// batchBody is a batch of the given users' requests, one job each.
func batchBody(t *testing.T, users ...string) ([]byte, string) {
	id := uuid.NewString()
	jobs := make([]map[string]any, len(users))
	for i, u := range users {
		jobs[i] = map[string]any{"user_id": u, "prompt": "batch job " + uuid.NewString()[:8]}
	}
	return mustJSON(t, map[string]any{"batch_id": id, "jobs": jobs}), id
}

// wantQueueFull checks a refusal as the API documents it: 429, Retry-After on
// HTTP, an {"error"} beginning "queue full" and containing each of parts.
func wantQueueFull(t *testing.T, what string, r result, parts ...string) {
	t.Helper()
	if r.code != http.StatusTooManyRequests {
		t.Fatalf("%s: %s, want 429 queue full", what, r)
	}
	msg := r.errMessage(t)
	if !strings.HasPrefix(msg, "queue full: ") {
		t.Fatalf("%s: error %q does not begin with \"queue full: \"", what, msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Fatalf("%s: error %q does not say %q", what, msg, p)
		}
	}
	if r.header != nil && r.header.Get("Retry-After") != "30" {
		t.Fatalf("%s: Retry-After %q, want 30", what, r.header.Get("Retry-After"))
	}
}

// wantRefusedJob checks a job refused on jobs.prompt: status error at step
// prompt with an error_message beginning "queue full".
func wantRefusedJob(t *testing.T, f *limitsFixture, ev events.StatusEvent, parts ...string) {
	t.Helper()
	j := f.fx.Job(t, ev.JobID)
	if ev.Status != events.StatusError || ev.Step != events.StepPrompt || j.Status != events.StatusError ||
		!strings.HasPrefix(j.ErrorMessage, "queue full: ") {
		t.Fatalf("job %s from jobs.prompt over the limit: event %s at %s, job %s with error_message %q; want error at prompt, \"queue full: ...\"",
			ev.JobID, ev.Status, ev.Step, j.Status, j.ErrorMessage)
	}
	for _, p := range parts {
		if !strings.Contains(j.ErrorMessage, p) {
			t.Fatalf("job %s: error_message %q does not say %q", ev.JobID, j.ErrorMessage, p)
		}
	}
}

// TestQueueLimitRefusesEveryPath: with SHEETPIPE_MAX_QUEUED=4 and four jobs
// unfinished (one from each path), the next submission over HTTP, micro, a batch
// and jobs.prompt is refused as documented and stores nothing but the refused
// job of jobs.prompt; every job accepted before completes, and then submissions
// are accepted again.
func TestQueueLimitRefusesEveryPath(t *testing.T) {
	f := newLimitsFixture(t, control.Config{MaxQueued: 4})
	accepted := []string{
		submit(t, f.http, "u1", "fractions"),
		submit(t, f.nats, "u2", "decimals"),
		f.publish(t, "u3", "angles").JobID,
	}
	body, batchID := batchBody(t, "u4")
	accepted = append(accepted, decode[events.BatchReply](t, sendBatch(t, f.http, body, "", "")).JobIDs...)
	for _, id := range accepted {
		if st := f.fx.Job(t, id).Status; st != events.StatusPending {
			t.Fatalf("job %s accepted under the limit is %s, want pending", id, st)
		}
	}
	stored := f.storedJobs(t)

	limit := []string{"4 unfinished jobs and the limit is 4", "SHEETPIPE_MAX_QUEUED", "Nothing was queued"}
	for _, tr := range []transport{f.http, f.nats} {
		r := tr.do(t, call{op: events.OpSubmit, fields: map[string]any{"user_id": "u5", "prompt": "over the limit"}})
		wantQueueFull(t, "submit over "+tr.name(), r, limit...)
	}
	body, refusedBatch := batchBody(t, "u6", "u7")
	wantQueueFull(t, "batch over http", sendBatch(t, f.http, body, "", ""), "4 unfinished jobs and the limit is 4", "2 more would exceed it")
	wantQueueFull(t, "batch over nats", sendBatch(t, f.nats, body, "", ""), limit...)
	refused := f.publish(t, "u8", "over the limit")
	wantRefusedJob(t, f, refused, limit...)

	if got := f.storedJobs(t); got != stored+1 {
		t.Fatalf("%d jobs stored after the refusals, want %d (those accepted and the refused one of jobs.prompt)", got, stored+1)
	}
	if _, _, err := f.fx.Store.Batch(f.fx.Ctx, refusedBatch); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("refused batch %s: record read gives %v, want none stored", refusedBatch, err)
	}
	if _, _, err := f.fx.Store.Batch(f.fx.Ctx, batchID); err != nil {
		t.Fatalf("accepted batch %s: %v", batchID, err)
	}

	f.runRest()
	for _, id := range accepted {
		f.fx.WaitStatus(t, id, events.StatusCompleted)
	}
	var again result
	waitUntil(t, "a submit accepted once the jobs completed", func() bool {
		again = f.http.do(t, call{op: events.OpSubmit, fields: map[string]any{"user_id": "u5", "prompt": "after the queue drained"}})
		if again.code != http.StatusAccepted && again.code != http.StatusTooManyRequests {
			t.Fatalf("submit after the jobs completed: %s", again)
		}
		return again.ok()
	})
	f.fx.WaitStatus(t, decode[events.SubmitReply](t, again).JobID, events.StatusCompleted)
	f.fx.WaitStatus(t, f.publish(t, "u8", "on jobs.prompt again").JobID, events.StatusCompleted)
	decode[events.BatchReply](t, sendBatch(t, f.nats, body, "", ""))
}

// TestQueueLimitPerUser: with SHEETPIPE_MAX_QUEUED_PER_USER=2, a user with two
// unfinished jobs is refused on every path, a batch with one of their jobs is
// refused whole, and another user is accepted meanwhile. Once the user's jobs
// complete, the user is accepted again (the count follows each job's end, with
// no recount in between).
func TestQueueLimitPerUser(t *testing.T) {
	f := newLimitsFixture(t, control.Config{MaxQueuedPerUser: 2, RecountEvery: time.Hour})
	held := []string{submit(t, f.http, "alice", "fractions"), f.publish(t, "alice", "decimals").JobID}
	stored := f.storedJobs(t)

	alice := []string{`user "alice" has 2 unfinished jobs and the limit per user is 2`, "SHEETPIPE_MAX_QUEUED_PER_USER"}
	for _, tr := range []transport{f.http, f.nats} {
		r := tr.do(t, call{op: events.OpSubmit, fields: map[string]any{"user_id": "alice", "prompt": "one more"}})
		wantQueueFull(t, "alice's submit over "+tr.name(), r, alice...)
	}
	c, err := client.New(f.nats.nc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Submit(f.fx.Ctx, events.JobRequest{UserID: "alice", Prompt: "through the client"})
	var ce *events.ControlError
	if !errors.Is(err, events.ErrQueueFull) || !errors.As(err, &ce) || ce.Code != 429 {
		t.Fatalf("client.Submit over alice's limit: %v, want a ControlError 429 matching events.ErrQueueFull", err)
	}
	body, refusedBatch := batchBody(t, "bob", "alice")
	wantQueueFull(t, "a batch with a job of alice's", sendBatch(t, f.http, body, "", ""), alice...)
	wantRefusedJob(t, f, f.publish(t, "alice", "one more"), alice...)
	if got := f.storedJobs(t); got != stored+1 {
		t.Fatalf("%d jobs stored after alice's refusals, want %d", got, stored+1)
	}
	if _, _, err := f.fx.Store.Batch(f.fx.Ctx, refusedBatch); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("refused batch %s: record read gives %v, want none stored", refusedBatch, err)
	}

	bob := submit(t, f.nats, "bob", "angles")
	bobBatch, _ := batchBody(t, "bob")
	decode[events.BatchReply](t, sendBatch(t, f.http, bobBatch, "", ""))
	if st := f.fx.Job(t, bob).Status; st != events.StatusPending {
		t.Fatalf("bob's job is %s, want pending beside alice's refusals", st)
	}
	q := decode[events.QueueReply](t, f.http.request(t, http.MethodGet, "/queue?user_id=alice", "", nil))
	if q.User == nil || q.User.Queued != 2 || q.MaxPerUser != 2 || q.Queued != 4 {
		t.Fatalf("GET /queue?user_id=alice: %+v, want alice at 2 of 2 and 4 unfinished", q)
	}
	q = decode[events.QueueReply](t, f.nats.request(t, events.ControlSubject(events.OpQueue), mustJSON(t, events.QueueQuery{UserID: "bob"})))
	if q.User == nil || q.User.Queued != 2 {
		t.Fatalf("sheetpipe.queue for bob: %+v, want 2", q)
	}

	f.runRest()
	for _, id := range held {
		f.fx.WaitStatus(t, id, events.StatusCompleted)
	}
	waitUntil(t, "alice accepted once her jobs completed", func() bool {
		r := f.http.do(t, call{op: events.OpSubmit, fields: map[string]any{"user_id": "alice", "prompt": "after her jobs completed"}})
		if !r.ok() && r.code != http.StatusTooManyRequests {
			t.Fatalf("alice's submit after her jobs completed: %s", r)
		}
		return r.ok()
	})
}

// TestQueueCountRepaired: a user's count corrupted (too high: their
// submissions are refused; too low: the limit would let too many through) is
// repaired from the active index by the recount, and the metrics show the user.
func TestQueueCountRepaired(t *testing.T) {
	f := newLimitsFixture(t, control.Config{MaxQueuedPerUser: 2, RecountEvery: 50 * time.Millisecond})
	submit(t, f.http, "carol", "fractions")
	waitCount := func(want int64) {
		t.Helper()
		waitUntil(t, "carol's count repaired", func() bool {
			n, _, err := f.fx.Store.Queued(f.fx.Ctx, "carol")
			if err != nil {
				t.Fatal(err)
			}
			return n == want
		})
	}
	corrupt := func(n int64) {
		t.Helper()
		_, rev, err := f.fx.Store.Queued(f.fx.Ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.fx.Store.SetQueued(f.fx.Ctx, "carol", n, rev); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(1)

	corrupt(2) // as if a process died before giving back a count
	r := f.http.do(t, call{op: events.OpSubmit, fields: map[string]any{"user_id": "carol", "prompt": "refused while corrupt"}})
	if r.code != http.StatusTooManyRequests {
		t.Logf("submit with the count corrupted: %s (the recount was faster)", r)
	}
	waitCount(1)
	submit(t, f.http, "carol", "accepted once repaired")

	corrupt(0) // as if a process died before counting a job
	waitCount(2)
	wantQueueFull(t, "carol's submit after the repair", f.http.do(t, call{op: events.OpSubmit,
		fields: map[string]any{"user_id": "carol", "prompt": "a third"}}), `user "carol" has 2`)

	waitUntil(t, "queue_top_users shows carol first", func() bool {
		q := decode[events.QueueReply](t, f.http.request(t, http.MethodGet, "/queue", "", nil))
		return len(q.Top) == 1 && q.Top[0] == events.UserQueue{UserID: "carol", Queued: 2}
	})
	metric := scrape(t, f.fx.Metrics.Queue.Top, "sheetpipe_queue_top_users")
	if !strings.Contains(metric, `sheetpipe_queue_top_users{rank="1",user_id="carol"} 2`) {
		t.Fatalf("metrics:\n%s\nwant carol at rank 1 with 2", metric)
	}
	if queued := scrape(t, f.fx.Metrics.Queue.Jobs, "sheetpipe_queued_jobs"); !strings.Contains(queued, `sheetpipe_queued_jobs{priority="normal",stage="design"} 2`) {
		t.Fatalf("metrics:\n%s\nwant carol's 2 tickets waiting at design, normal priority", queued)
	}
	if n := scrape(t, f.fx.Metrics.Queue.Unfinished, "sheetpipe_unfinished_jobs"); n != "sheetpipe_unfinished_jobs{} 2" {
		t.Fatalf("metrics: %q, want 2 unfinished jobs", n)
	}
	if refused := scrape(t, f.fx.Metrics.Queue.Refused, "sheetpipe_submissions_refused_total"); !strings.Contains(refused, `reason="max_queued_per_user"`) {
		t.Fatalf("metrics:\n%s\nwant refusals by reason", refused)
	}
}

// scrape returns the series of c, in the exposition's form.
func scrape(t *testing.T, c prometheus.Collector, name string) string {
	t.Helper()
	var out []string
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			b, _ := json.Marshal(v)
			out = append(out, name+"{"+strings.Join(labels, ",")+"} "+string(b))
		}
	}
	return strings.Join(out, "\n")
}

// TestQueueLimitPerUserRace: twenty submissions of one user at once, spread
// over two sheetd (two control planes) with SHEETPIPE_MAX_QUEUED_PER_USER=5:
// exactly five are accepted and stored, the rest refused as queue full.
func TestQueueLimitPerUserRace(t *testing.T) {
	f := newLimitsFixture(t, control.Config{MaxQueuedPerUser: 5, RecountEvery: time.Hour})
	planes := []*control.Plane{f.plane, f.fx.StartProcess(events.StagePrompt).Plane}
	type outcome struct {
		id  string
		err error
	}
	out := make(chan outcome, 20)
	for i := range 20 {
		go func() {
			id, err := planes[i%2].Submit(f.fx.Ctx, events.JobRequest{UserID: "dave", Prompt: "race " + uuid.NewString()})
			out <- outcome{id, err}
		}()
	}
	accepted := 0
	for range 20 {
		o := <-out
		switch {
		case o.err == nil:
			accepted++
		case !errors.Is(o.err, events.ErrQueueFull):
			t.Fatalf("submit: %v, want accepted or queue full", o.err)
		}
	}
	if accepted != 5 || f.storedJobs(t) != 5 {
		t.Fatalf("%d accepted and %d stored of 20 racing submissions, want 5 and 5", accepted, f.storedJobs(t))
	}
	if n, _, err := f.fx.Store.Queued(f.fx.Ctx, "dave"); err != nil || n != 5 {
		t.Fatalf("dave's count %d (%v), want 5", n, err)
	}
}
