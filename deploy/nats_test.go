package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/service"
)

// TestClientPermissions runs deploy/nats/nats-server.conf: user sheetd provisions
// every resource; user client can submit a job (with a JetStream ack), follow
// jobs.status, replay a job's events and read its PDF, and is refused KV writes,
// stage tickets, stream changes and sheetd's reply inbox.
func TestClientPermissions(t *testing.T) {
	srv, srvLog := startConfServer(t, "nats/nats-server.conf")
	if code, body := httpGet("http://" + srv.MonitorAddr().String() + "/healthz"); code != http.StatusOK {
		t.Fatalf("monitoring /healthz (the compose health check): %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	_, sjs, sheetdErrs := connectAs(t, srv, "sheetd", sheetdPassword, nats.CustomInboxPrefix(service.InboxPrefix))
	if err := broker.Provision(ctx, sjs, broker.Resources{}); err != nil {
		t.Fatalf("provision as sheetd: %v", err)
	}
	id := uuid.NewString()
	pdf := append([]byte("%PDF-1.5\n"), bytes.Repeat([]byte("worksheet "), 50_000)...) // several object chunks
	obs, err := sjs.ObjectStore(ctx, broker.BucketPDFs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, id+".pdf", pdf); err != nil {
		t.Fatalf("put pdf as sheetd: %v", err)
	}
	kv, err := sjs.KeyValue(ctx, kvstore.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(ctx, id, []byte(`{"id":"`+id+`","status":"completed"}`))
	if err != nil {
		t.Fatalf("kv write as sheetd: %v", err)
	}

	cnc, cjs, clientErrs := connectAs(t, srv, "client", clientPassword)
	status := make(chan *nats.Msg, 4)
	if _, err := cnc.ChanSubscribe(events.SubjectStatus, status); err != nil {
		t.Fatal(err)
	}
	if _, err := cnc.SubscribeSync(events.SubjectRejected); err != nil {
		t.Fatal(err)
	}
	if err := cnc.Flush(); err != nil {
		t.Fatal(err)
	}

	t.Run("client submits a job request", func(t *testing.T) {
		submitJob(ctx, t, cjs, "fractions, grade 5")
		jobs, err := sjs.Stream(ctx, events.StreamJobs)
		if err != nil {
			t.Fatal(err)
		}
		if n := jobs.CachedInfo().State.Msgs; n != 1 {
			t.Fatalf("JOBS holds %d messages, want the request", n)
		}
	})

	t.Run("client follows jobs.status and replays a job's events", func(t *testing.T) {
		ev, _ := json.Marshal(events.StatusEvent{JobID: id, UserID: "u", Status: events.StatusCompleted, Step: events.StepDone,
			Message: "done", Revision: rev, Time: time.Now()})
		if _, err := sjs.Publish(ctx, events.SubjectStatus, ev); err != nil {
			t.Fatalf("publish status as sheetd: %v", err)
		}
		select {
		case msg := <-status:
			if !bytes.Contains(msg.Data, []byte(id)) {
				t.Fatalf("unexpected status event %s", msg.Data)
			}
		case <-ctx.Done():
			t.Fatal("client saw no status event")
		}
		c, err := client.New(cnc)
		if err != nil {
			t.Fatal(err)
		}
		watch, err := c.Watch(ctx, id)
		if err != nil {
			t.Fatalf("watch as client: %v", err)
		}
		got, ok := <-watch
		if !ok || got.JobID != id || got.Status != events.StatusCompleted {
			t.Fatalf("replayed event %+v (ok %v), want the completed event", got, ok)
		}
	})

	t.Run("sheetd reads status events from consumer dependents", func(t *testing.T) {
		cons, err := sjs.Consumer(ctx, events.StreamEvents, broker.ConsumerDependents)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second)); err != nil {
			t.Fatalf("fetch status event as sheetd: %v", err)
		}
	})

	t.Run("client reads the PDF", func(t *testing.T) {
		// What client.PDF does once sheetpipe.get says the job has one (no sheetd
		// runs here to answer that).
		cobs, err := cjs.ObjectStore(ctx, broker.BucketPDFs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cobs.GetBytes(ctx, id+".pdf")
		if err != nil {
			t.Fatalf("read pdf as client: %v", err)
		}
		if !bytes.Equal(got, pdf) {
			t.Fatalf("pdf: %d bytes, want %d", len(got), len(pdf))
		}
	})

	if v := srvLog.Violations(); len(v) > 0 {
		t.Fatalf("allowed work caused permission violations: %v", v)
	}

	t.Run("client is refused", func(t *testing.T) {
		denied := []struct {
			name    string
			do      func(context.Context) error
			subject string // named by the permission violation
		}{
			{"a direct KV write to jobs", func(ctx context.Context) error {
				ckv, err := cjs.KeyValue(ctx, kvstore.BucketJobs) // binding needs only stream info
				if err != nil {
					return err
				}
				_, err = ckv.Put(ctx, id, []byte(`{"status":"aborted"}`))
				return err
			}, "$KV.jobs." + id},
			{"a jobs.compile ticket", func(ctx context.Context) error {
				_, err := cjs.Publish(ctx, events.SubjectCompile, []byte(`{"job_id":"`+id+`"}`))
				return err
			}, events.SubjectCompile},
			{"a high-priority design ticket", func(ctx context.Context) error {
				q := events.TicketQueue(events.StageDesign, events.PriorityHigh)
				_, err := cjs.Publish(ctx, q.Subject(), []byte(`{"job_id":"`+id+`"}`))
				return err
			}, events.TicketQueue(events.StageDesign, events.PriorityHigh).Subject()},
			{"a meta ticket", func(ctx context.Context) error {
				_, err := cjs.Publish(ctx, events.SubjectMeta, []byte(`{"job_id":"`+id+`"}`))
				return err
			}, events.SubjectMeta},
			{"a forged event published again", func(ctx context.Context) error {
				_, err := cjs.Publish(ctx, events.SubjectStatusAgain, []byte(`{"job_id":"`+id+`","status":"completed"}`))
				return err
			}, events.SubjectStatusAgain},
			{"deleting the JOBS stream", func(ctx context.Context) error {
				return cjs.DeleteStream(ctx, events.StreamJobs)
			}, "$JS.API.STREAM.DELETE.JOBS"},
			{"reading a conversation", func(ctx context.Context) error {
				_, err := cjs.KeyValue(ctx, kvstore.BucketConversations)
				return err
			}, "$JS.API.STREAM.INFO.KV_conversations"},
		}
		t.Run("publish", func(t *testing.T) {
			for _, tc := range denied {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					// The server drops a refused request: it fails when opCtx ends,
					// and the violation comes back as an asynchronous error.
					opCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
					defer cancel()
					if err := tc.do(opCtx); err == nil {
						t.Fatal("succeeded")
					}
					err := clientErrs.waitFor(t, fmt.Sprintf("%q", tc.subject))
					if !errors.Is(err, nats.ErrPermissionViolation) {
						t.Fatalf("error %v, want a permission violation", err)
					}
				})
			}
		})
		for _, subject := range []string{service.InboxPrefix + ".>", events.SubjectCompile} {
			if _, err := cnc.SubscribeSync(subject); err != nil {
				t.Fatal(err)
			}
			err := clientErrs.waitFor(t, fmt.Sprintf("Subscription to %q", subject))
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("subscribe %s: %v, want a permission violation", subject, err)
			}
		}
		if n, err := kv.Get(ctx, id); err != nil || n.Revision() != rev {
			t.Fatalf("job changed by a refused write: %v", err)
		}
	})

	if errs := sheetdErrs.all(); len(errs) > 0 {
		t.Fatalf("sheetd had asynchronous errors: %v", errs)
	}
}

// TestNATSClusterConfs loads nats-1/2/3.conf as compose does and checks they make
// one JetStream cluster of three named nodes with the same users.
func TestNATSClusterConfs(t *testing.T) {
	t.Setenv("SHEETD_PASSWORD", sheetdPassword)
	t.Setenv("CLIENT_PASSWORD", clientPassword)
	single, err := server.ProcessConfigFile("nats/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("nats-%d", i)
		opts, err := server.ProcessConfigFile("nats/" + name + ".conf")
		if err != nil {
			t.Fatalf("%s.conf: %v", name, err)
		}
		if opts.ServerName != name || !opts.JetStream || opts.StoreDir != "/data" || opts.Cluster.Name != "sheetpipe" || opts.Cluster.Port != 6222 {
			t.Fatalf("%s.conf: name %q jetstream %v store %q cluster %q port %d", name, opts.ServerName, opts.JetStream, opts.StoreDir, opts.Cluster.Name, opts.Cluster.Port)
		}
		if opts.HTTPPort != 8222 || opts.Port != 4222 || opts.MaxPayload != single.MaxPayload || opts.MaxPayload < 8<<20 {
			t.Fatalf("%s.conf: client port %d monitoring port %d max payload %d", name, opts.Port, opts.HTTPPort, opts.MaxPayload)
		}
		routes := map[string]bool{}
		for _, r := range opts.Routes {
			routes[r.Host] = true
		}
		if len(routes) != 3 || !routes["nats-1:6222"] || !routes["nats-2:6222"] || !routes["nats-3:6222"] {
			t.Fatalf("%s.conf routes %v, want nats-1..3:6222", name, routes)
		}
		if len(opts.Users) != 2 || opts.Users[0].Password != sheetdPassword || opts.Users[1].Password != clientPassword {
			t.Fatalf("%s.conf users: %d, passwords not from the environment", name, len(opts.Users))
		}
	}
}
