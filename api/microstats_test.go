package api_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/micro"

	"github.com/sheetpipe/sheetpipe/api"
	"github.com/sheetpipe/sheetpipe/events"
)

// TestMicroStatsCountErrorsAndTimeTheWork checks that `nats micro stats
// sheetpipe` ($SRV.STATS) counts every request when it is answered, every error
// reply (4xx and 5xx) as an error with its code and message, and times the whole
// request, not only the handler function that hands it to a goroutine: a get
// held for at least hold counts at least hold, and no endpoint counts more time
// than its callers waited.
func TestMicroStatsCountErrorsAndTimeTheWork(t *testing.T) {
	t.Parallel()
	stub, _, nt, _ := startStub(t, api.Config{})
	const hold = 100 * time.Millisecond
	waited := map[string]time.Duration{} // per endpoint, as the caller measured
	timed := func(c call, want int) result {
		t.Helper()
		start := time.Now()
		r := nt.do(t, c)
		waited[c.op] += time.Since(start)
		if r.code != want {
			t.Fatalf("%s: %s, want %d", c.op, r, want)
		}
		return r
	}

	// A get that takes at least hold: its job is held until hold has passed since
	// the request reached the stub.
	id := uuid.NewString()
	release := stub.hold(id)
	var wg sync.WaitGroup
	body := mustJSON(t, events.JobRef{JobID: id})
	wg.Go(func() {
		start := time.Now()
		msg, err := nt.nc.Request(events.ControlSubject(events.OpGet), body, waitLimit)
		took := time.Since(start)
		if err != nil || msg.Header.Get(micro.ErrorCodeHeader) != "" {
			t.Errorf("held get: %v %v", msg, err)
		}
		waited[events.OpGet] += took // read only after wg.Wait
	})
	waitUntil(t, "the held get in flight", func() bool { return stub.waitingGets() == 1 })
	time.Sleep(hold) // the work the get is held for; released below whatever happens
	release()
	wg.Wait()

	timed(call{op: events.OpSubmit, fields: map[string]any{"user_id": "u", "prompt": "fractions"}}, http.StatusOK)
	unknown := uuid.NewString()
	timed(call{op: events.OpGet, id: unknown}, http.StatusNotFound)
	timed(call{op: events.OpGet, raw: []byte(`{"job_id":`)}, http.StatusBadRequest)
	timed(call{op: events.OpAbort, id: unknown}, http.StatusConflict)
	timed(call{op: events.OpRetry, id: unknown}, http.StatusInternalServerError)

	want := map[string]struct {
		requests, errors int
		code, message    string // last error: "code:" then a message that says
	}{
		events.OpSubmit: {1, 0, "", ""},
		events.OpGet:    {3, 2, "400:", "not the expected JSON"},
		events.OpAbort:  {1, 1, "409:", "cannot abort job " + unknown + ": it is completed"},
		events.OpRetry:  {1, 1, "500:", "not in the stub"},
		events.OpList:   {0, 0, "", ""},
	}
	subject, _ := micro.ControlSubject(micro.StatsVerb, events.ServiceName, "")
	stats := decode[micro.Stats](t, nt.request(t, subject, nil))
	if stats.Name != events.ServiceName || stats.ID == "" || stats.Type != micro.StatsResponseType || stats.Started.IsZero() {
		t.Fatalf("stats identity %+v, type %q, started %s", stats.ServiceIdentity, stats.Type, stats.Started)
	}
	for op, w := range want {
		i := slices.IndexFunc(stats.Endpoints, func(ep *micro.EndpointStats) bool { return ep.Name == op })
		if i < 0 {
			t.Fatalf("no stats of %s: %+v", op, stats.Endpoints)
		}
		e := stats.Endpoints[i]
		if e.Subject != events.ControlSubject(op) || e.QueueGroup != micro.DefaultQueueGroup ||
			e.NumRequests != w.requests || e.NumErrors != w.errors || !strings.HasPrefix(e.LastError, w.code) ||
			!strings.Contains(e.LastError, w.message) || (w.code == "") != (e.LastError == "") {
			t.Errorf("stats of %s: %+v, want %d requests, %d errors, last error %q...%q", op, e, w.requests, w.errors, w.code, w.message)
		}
		if e.ProcessingTime > waited[op] {
			t.Errorf("%s: processing time %s is more than its callers waited, %s", op, e.ProcessingTime, waited[op])
		}
		if w.requests > 0 && (e.ProcessingTime <= 0 || e.AverageProcessingTime != e.ProcessingTime/time.Duration(w.requests)) {
			t.Errorf("%s: processing time %s, average %s over %d requests", op, e.ProcessingTime, e.AverageProcessingTime, w.requests)
		}
	}
	if i := slices.IndexFunc(stats.Endpoints, func(ep *micro.EndpointStats) bool { return ep.Name == events.OpGet }); stats.Endpoints[i].ProcessingTime < hold {
		t.Errorf("get: processing time %s, less than the %s one get was held for", stats.Endpoints[i].ProcessingTime, hold)
	}

	// Every way to ask is answered by the same instance with the same counts;
	// PING names it too, and INFO still lists the endpoints.
	for _, subject := range []string{"$SRV.STATS", "$SRV.STATS." + events.ServiceName + "." + stats.ID} {
		again := decode[micro.Stats](t, nt.request(t, subject, nil))
		if again.ID != stats.ID || len(again.Endpoints) != len(stats.Endpoints) {
			t.Fatalf("%s: %+v", subject, again)
		}
		for i, e := range again.Endpoints {
			if was := stats.Endpoints[i]; e.Name != was.Name || e.NumRequests != was.NumRequests || e.NumErrors != was.NumErrors ||
				e.LastError != was.LastError || e.ProcessingTime != was.ProcessingTime {
				t.Fatalf("%s: endpoint %+v, was %+v", subject, e, stats.Endpoints[i])
			}
		}
	}
	for _, subject := range []string{"$SRV.PING", "$SRV.PING." + events.ServiceName, "$SRV.PING." + events.ServiceName + "." + stats.ID} {
		ping := decode[micro.Ping](t, nt.request(t, subject, nil))
		if ping.ID != stats.ID || ping.Name != events.ServiceName || ping.Version != events.ServiceVersion || ping.Type != micro.PingResponseType {
			t.Fatalf("%s: %+v", subject, ping)
		}
	}
	for _, subject := range []string{"$SRV.INFO", "$SRV.INFO." + events.ServiceName + "." + stats.ID} {
		info := decode[micro.Info](t, nt.request(t, subject, nil))
		if info.ID != stats.ID || len(info.Endpoints) != len(stats.Endpoints) || info.Type != micro.InfoResponseType {
			t.Fatalf("%s: %+v", subject, info)
		}
	}
}
