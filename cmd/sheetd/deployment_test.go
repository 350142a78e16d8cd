package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/fakellm"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// deployment is sheetd processes joined to one external NATS server or cluster
// (NATS_URL), sharing an LLM server, as an operator runs several instances. The
// server lives in the test process, so it outlives any sheetd the test kills.
type deployment struct {
	t       *testing.T
	natsURL string
	llm     *fakellm.Server
	env     []string
}

// worker is one sheetd of a deployment.
type worker struct {
	*process
	httpAddr string
}

// startWorker starts a sheetd with the deployment's settings plus extraEnv and
// waits until it is ready.
func (d *deployment) startWorker(name string, extraEnv ...string) *worker {
	d.t.Helper()
	addr := testnats.FreeAddr(d.t)
	env := append([]string{
		"NATS_URL=" + d.natsURL,
		"SHEETPIPE_HTTP_ADDR=" + addr,
		"OPENAI_BASE_URL=" + d.llm.URL,
		"OPENAI_API_KEY=test",
		"SHEETPIPE_RETRY_BASE=50ms",
	}, d.env...)
	p := start(d.t, name, append(env, extraEnv...))
	p.waitReady("http://" + addr + "/readyz")
	return &worker{process: p, httpAddr: addr}
}

// fastRecovery are the settings that make a dead worker's job recover in
// seconds: its ticket returns after 2s of silence, its lease lapses after 2s,
// the sweeper looks every second.
var fastRecovery = []string{
	"SHEETPIPE_ACK_WAIT=2s",
	"SHEETPIPE_LEASE_TTL=2s",
	"SHEETPIPE_SWEEP_INTERVAL=1s",
}

// metric reads one sample of the worker's /metrics, e.g.
// `sheetpipe_jobs_finished_total{status="completed"}`; 0 when absent.
func (w *worker) metric(series string) float64 {
	w.t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + w.httpAddr + "/metrics")
	if err != nil {
		w.t.Fatalf("scrape %s: %v", w.name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				w.t.Fatalf("%s: sample %q: %v", w.name, sc.Text(), err)
			}
			return v
		}
	}
	return 0
}

// dial connects the test's own client to url (a comma list for a cluster); the
// connection reconnects for ever, so it survives a server restart or node loss.
func dial(t *testing.T, ctx context.Context, url string) *client {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, ctx: ctx, nc: nc, js: js}
}

// submitMany publishes n job requests, retrying each publish (under its own
// message id, so a retry after a lost acknowledgement creates nothing new) until
// the server stores it; prompt(i) names the i-th request's prompt.
func (c *client) submitMany(ids []string, prompt func(i int) string) {
	c.t.Helper()
	for i, id := range ids {
		data, err := json.Marshal(events.JobRequest{JobID: id, UserID: "teacher", Prompt: prompt(i)})
		if err != nil {
			c.t.Fatal(err)
		}
		c.publishRetrying(events.SubjectPrompt, data, id)
	}
}

// publishRetrying publishes until the stream acknowledges, for at most a minute.
func (c *client) publishRetrying(subject string, data []byte, msgID string) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		_, err := c.js.Publish(ctx, subject, data, jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("publish %s: %v", msgID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jobs reads every job in the jobs bucket.
func (c *client) jobs() map[string]*events.Job {
	c.t.Helper()
	kv, err := c.js.KeyValue(c.ctx, kvstore.BucketJobs)
	if err != nil {
		c.t.Fatal(err)
	}
	lister, err := kv.ListKeys(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]*events.Job{}
	for key := range lister.Keys() {
		e, err := kv.Get(c.ctx, key)
		if err != nil {
			c.t.Fatalf("get job %s: %v", key, err)
		}
		var j events.Job
		if err := json.Unmarshal(e.Value(), &j); err != nil {
			c.t.Fatalf("job %s is not JSON: %v", key, err)
		}
		out[key] = &j
	}
	return out
}

// waitFinal waits until every job of ids is in a final status, polling the bucket,
// for at most d; it fails the test naming the jobs still open.
func (c *client) waitFinal(ids []string, d time.Duration, logs ...*worker) map[string]*events.Job {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var open []string
		jobs := map[string]*events.Job{}
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			j, err := c.job(ctx, id)
			cancel()
			if err != nil || !events.FinishedStatus(j.Status) {
				open = append(open, id)
				continue
			}
			jobs[id] = j
		}
		if len(open) == 0 {
			return jobs
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, id := range open[:min(len(open), 10)] {
				if j, err := c.job(c.ctx, id); err == nil {
					fmt.Fprintf(&b, "\n  %s: %s/%s seq %d %q", id, j.Status, j.Stage, j.Seq, j.Message)
				} else {
					fmt.Fprintf(&b, "\n  %s: %v", id, err)
				}
			}
			for _, w := range logs {
				fmt.Fprintf(&b, "\n%s stderr (tail):\n%s", w.name, tail(w.stderr.String(), 4000))
			}
			c.t.Fatalf("%d of %d jobs not final within %s:%s", len(open), len(ids), d, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *client) job(ctx context.Context, id string) (*events.Job, error) {
	kv, err := c.js.KeyValue(ctx, kvstore.BucketJobs)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var j events.Job
	return &j, json.Unmarshal(e.Value(), &j)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// replay reads every status event stored in JOB_EVENTS, by job, in stream order.
// A read that fails (a cluster electing leaders) is started again, for at most
// 30s.
func (c *client) replay() map[string][]events.StatusEvent {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all, err := c.replayOnce()
		if err == nil {
			return all
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replay JOB_EVENTS: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *client) replayOnce() (map[string][]events.StatusEvent, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	cons, err := c.js.OrderedConsumer(ctx, events.StreamEvents,
		jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectStatus}})
	if err != nil {
		return nil, err
	}
	out := map[string][]events.StatusEvent{}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		n, pending := 0, uint64(1)
		for m := range batch.Messages() {
			n++
			var ev events.StatusEvent
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				c.t.Fatalf("status event is not JSON: %v: %s", err, m.Data())
			}
			out[ev.JobID] = append(out[ev.JobID], ev)
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 || pending == 0 {
			return out, nil
		}
	}
}

// newIDs returns n fresh job ids.
func newIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}

// statuses counts the jobs in the bucket by status and step.
func (c *client) statuses() map[string]int {
	c.t.Helper()
	out := map[string]int{}
	for _, j := range c.jobs() {
		out[string(j.Status)+"/"+string(j.CurrentStep)]++
	}
	return out
}

// waitCount polls the jobs bucket until at least n jobs have status st, for at
// most d.
func (c *client) waitCount(st events.Status, n int, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := 0
		for _, j := range c.jobs() {
			if j.Status == st {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d jobs %s within %s, want %d", got, st, d, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
