package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/broker"
	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/testnats"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

func TestProvisionConcurrentInstances(t *testing.T) {
	s := testnats.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const instances = 6
	errs := make(chan error, instances)
	var wg sync.WaitGroup
	for range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			js, err := jetstream.New(s.NC)
			if err != nil {
				errs <- err
				return
			}
			errs <- broker.Provision(ctx, js, broker.Resources{})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent provision: %v", err)
		}
	}
	// A later start with the same settings is a no-op.
	if err := broker.Provision(ctx, s.JS, broker.Resources{}); err != nil {
		t.Fatalf("re-provision: %v", err)
	}

	jobs, err := s.JS.Stream(ctx, events.StreamJobs)
	if err != nil {
		t.Fatalf("stream JOBS: %v", err)
	}
	info := jobs.CachedInfo()
	if info.Config.Retention != jetstream.WorkQueuePolicy || info.Config.Storage != jetstream.FileStorage {
		t.Fatalf("JOBS retention %v storage %v, want work queue on file", info.Config.Retention, info.Config.Storage)
	}
	if info.Config.Duplicates <= 0 {
		t.Fatalf("JOBS has no duplicates window")
	}
	// The contract's five subjects, the high and low queues of the four stages
	// after prompt, and meta.
	if len(info.Config.Subjects) != 5+4*2+1 {
		t.Fatalf("JOBS subjects %v", info.Config.Subjects)
	}
	for _, st := range events.Stages {
		c, err := jobs.Consumer(ctx, string(st))
		if err != nil {
			t.Fatalf("consumer %s: %v", st, err)
		}
		cfg := c.CachedInfo().Config
		if cfg.FilterSubject != st.Subject() || cfg.AckPolicy != jetstream.AckExplicitPolicy {
			t.Fatalf("consumer %s: filter %q ack %v", st, cfg.FilterSubject, cfg.AckPolicy)
		}
	}
	for _, q := range events.Queues() {
		c, err := jobs.Consumer(ctx, q.Durable())
		if err != nil {
			t.Fatalf("consumer %s: %v", q.Durable(), err)
		}
		if f := c.CachedInfo().Config.FilterSubject; f != q.Subject() {
			t.Fatalf("consumer %s: filter %q, want %q", q.Durable(), f, q.Subject())
		}
	}
	ev, err := s.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatalf("stream JOB_EVENTS: %v", err)
	}
	if ev.CachedInfo().Config.Retention != jetstream.LimitsPolicy || ev.CachedInfo().Config.MaxAge != 7*24*time.Hour {
		t.Fatalf("JOB_EVENTS config %+v", ev.CachedInfo().Config)
	}
	hooks, err := ev.Consumer(ctx, broker.ConsumerWebhooks)
	if err != nil {
		t.Fatalf("consumer %s: %v", broker.ConsumerWebhooks, err)
	}
	if cfg := hooks.CachedInfo().Config; cfg.FilterSubject != events.SubjectStatus ||
		cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.MaxDeliver != 10 {
		t.Fatalf("consumer %s: filter %q ack %v max deliver %d", broker.ConsumerWebhooks, cfg.FilterSubject, cfg.AckPolicy, cfg.MaxDeliver)
	}
	dep, err := ev.Consumer(ctx, broker.ConsumerDependents)
	if err != nil {
		t.Fatalf("consumer %s: %v", broker.ConsumerDependents, err)
	}
	if cfg := dep.CachedInfo().Config; cfg.FilterSubject != events.SubjectStatus || cfg.DeliverPolicy != jetstream.DeliverNewPolicy {
		t.Fatalf("consumer %s: filter %q deliver %v", broker.ConsumerDependents, cfg.FilterSubject, cfg.DeliverPolicy)
	}
	for _, b := range []string{kvstore.BucketJobs, kvstore.BucketConversations, kvstore.BucketBatches, kvstore.BucketDependents} {
		if _, err := s.JS.KeyValue(ctx, b); err != nil {
			t.Fatalf("bucket %s: %v", b, err)
		}
	}
	// Batch records expire (their jobs do not): 30 days unless configured.
	for _, tc := range []struct {
		r    broker.Resources
		want time.Duration
	}{{broker.Resources{}, 30 * 24 * time.Hour}, {broker.Resources{BatchesMaxAge: time.Hour}, time.Hour}} {
		if err := broker.Provision(ctx, s.JS, tc.r); err != nil {
			t.Fatalf("provision %+v: %v", tc.r, err)
		}
		kv, err := s.JS.KeyValue(ctx, kvstore.BucketBatches)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.TTL() != tc.want {
			t.Fatalf("bucket %s max age %v, want %v", kvstore.BucketBatches, st.TTL(), tc.want)
		}
	}
	if _, err := s.JS.ObjectStore(ctx, broker.BucketPDFs); err != nil {
		t.Fatalf("object store: %v", err)
	}
}

func TestStartEmbeddedBadListen(t *testing.T) {
	for name, listen := range map[string]string{"no port": "127.0.0.1", "bad port": "127.0.0.1:http"} {
		t.Run(name, func(t *testing.T) {
			if _, err := broker.StartEmbedded(t.TempDir(), listen); err == nil {
				t.Fatalf("StartEmbedded(%q) succeeded", listen)
			}
		})
	}
}

// TestProvisionRaisesReplicas: an existing R1 deployment provisioned again with
// three replicas (SHEETPIPE_REPLICAS raised on a cluster) ends with every stream
// and consumer at R3 in one start.
func TestProvisionRaisesReplicas(t *testing.T) {
	c := testnats.StartCluster(t, 3)
	_, js := c.Connect(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := broker.Provision(ctx, js, broker.Resources{Replicas: 1}); err != nil {
		t.Fatalf("provision R1: %v", err)
	}
	if err := broker.Provision(ctx, js, broker.Resources{Replicas: 3}); err != nil {
		t.Fatalf("provision R3 over R1: %v", err)
	}
	for _, st := range events.Stages {
		cons, err := js.Consumer(ctx, events.StreamJobs, string(st))
		if err != nil {
			t.Fatal(err)
		}
		if r := cons.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("consumer %s has %d replicas, want 3", st, r)
		}
	}
	dep, err := js.Consumer(ctx, events.StreamEvents, broker.ConsumerDependents)
	if err != nil {
		t.Fatal(err)
	}
	if r := dep.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("consumer %s has %d replicas, want 3", broker.ConsumerDependents, r)
	}
	s, err := js.Stream(ctx, events.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("stream JOBS has %d replicas, want 3", r)
	}
}

// A status event published again is stored as jobs.status when JOB_EVENTS lacks
// it and dropped when it holds it (same dedupe id); a subscriber of jobs.status
// receives only first publishes.
func TestStatusEventPublishedAgain(t *testing.T) {
	s := testnats.Provisioned(t, broker.Resources{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := s.NC.SubscribeSync(events.SubjectStatus)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ subject, id string }{
		{events.SubjectStatus, "job:1"},      // the first publish
		{events.SubjectStatusAgain, "job:1"}, // again: a duplicate
		{events.SubjectStatusAgain, "job:2"}, // again, the first lost
	} {
		if _, err := s.JS.Publish(ctx, p.subject, []byte(`{}`), jetstream.WithMsgID(p.id)); err != nil {
			t.Fatalf("publish %s %s: %v", p.subject, p.id, err)
		}
	}
	stream, err := s.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 || info.State.Subjects[events.SubjectStatus] != 2 || len(info.State.Subjects) != 1 {
		t.Fatalf("JOB_EVENTS holds %d messages on %v, want 2 on %s", info.State.Msgs, info.State.Subjects, events.SubjectStatus)
	}
	if _, err := sub.NextMsg(time.Second); err != nil {
		t.Fatalf("the first publish: %v", err)
	}
	// A marker published after them is the next message the subscriber gets.
	if err := s.NC.Publish(events.SubjectStatus, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "marker" {
		t.Fatalf("a subscriber of %s received a publish again: %v %v", events.SubjectStatus, m, err)
	}
}
