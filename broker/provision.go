package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/kvstore"
)

// BucketPDFs is the object store holding <job_id>.pdf.
const BucketPDFs = "pdfs"

// PDFs binds the object store of PDFs.
func PDFs(ctx context.Context, js jetstream.JetStream) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, BucketPDFs)
	if err != nil {
		return nil, fmt.Errorf("bind object store %s: %w", BucketPDFs, err)
	}
	return obs, nil
}

// BucketPDFCache is the KV bucket holding the PDF of LaTeX that compiled, keyed by
// the source's content hash (a KV value is one message, so a hit costs one read,
// where an object store read costs a consumer). It is a cache: entries age out
// after PDFCacheMaxAge, the oldest go first beyond its size, and a PDF over
// PDFCacheMaxValue is not cached.
//
// Its size is PDFCacheMaxBytes where the server can reserve that much (a
// stream's MaxBytes is reserved out of the server's JetStream storage, which
// an embedded server sets to 75% of the disk free at its start); on a smaller
// disk it is the largest half, quarter, ... of it the server can reserve, down
// to PDFCacheMinBytes, below which provisioning fails with the disk named.
const (
	BucketPDFCache   = kvstore.BucketPDFCache
	PDFCacheMaxAge   = 7 * 24 * time.Hour
	PDFCacheMaxBytes = 1 << 30
	PDFCacheMinBytes = 8 << 20
	PDFCacheMaxValue = 900 << 10
)

// ConsumerWebhooks is the durable consumer of jobs.status on JOB_EVENTS from
// which the webhook senders of every sheetd deliver final events.
const ConsumerWebhooks = "webhooks"

// ConsumerDependents is the durable consumer of jobs.status on JOB_EVENTS through
// which sheetd wakes the jobs that wait for a job whose run ended.
const ConsumerDependents = "dependents"

// Resources configures the JetStream resources.
type Resources struct {
	// Replicas of every stream, bucket and consumer. Default 1.
	Replicas int
	// EventsMaxAge bounds how long JOB_EVENTS keeps status events. Default 7 days.
	EventsMaxAge time.Duration
	// AckWait is how long a stage consumer waits for an ack or a heartbeat before
	// redelivering. Default 30s.
	AckWait time.Duration
	// MaxDeliver caps deliveries of one ticket. Default 50.
	MaxDeliver int
	// Duplicates is the JOBS stream's de-duplication window. Default 2m.
	Duplicates time.Duration
	// WebhookAttempts caps the deliveries of one status event to the webhooks
	// consumer, and so the POST attempts of one webhook. Default 10.
	WebhookAttempts int
	// BatchesMaxAge bounds how long the batches bucket keeps a batch record (its
	// jobs have their own retention); negative keeps records for ever. Default 30
	// days.
	BatchesMaxAge time.Duration
	// JobsMaxMsgsPerSubject bounds the messages of each subject of the JOBS
	// stream (jobs.prompt, and each stage's tickets) with DiscardNewPerSubject: a
	// publish beyond it is refused ("maximum messages per subject exceeded").
	// Default DefaultJobsMaxMsgsPerSubject; negative: no bound.
	JobsMaxMsgsPerSubject int64
	// JobsMaxBytes bounds the bytes of the whole JOBS stream, stage tickets
	// included, with DiscardNew ("maximum bytes exceeded"). Default 0: none.
	JobsMaxBytes int64
}

// DefaultJobsMaxMsgsPerSubject is the default of Resources.JobsMaxMsgsPerSubject:
// ten times the default SHEETPIPE_MAX_QUEUED, so stage tickets (one per
// unfinished job) never reach it while a flood on jobs.prompt does.
const DefaultJobsMaxMsgsPerSubject = 1_000_000

func (r Resources) withDefaults() Resources {
	if r.Replicas == 0 {
		r.Replicas = 1
	}
	if r.EventsMaxAge == 0 {
		r.EventsMaxAge = 7 * 24 * time.Hour
	}
	if r.AckWait == 0 {
		r.AckWait = 30 * time.Second
	}
	if r.MaxDeliver == 0 {
		r.MaxDeliver = 50
	}
	if r.Duplicates == 0 {
		r.Duplicates = 2 * time.Minute
	}
	if r.WebhookAttempts == 0 {
		r.WebhookAttempts = 10
	}
	switch {
	case r.BatchesMaxAge < 0:
		r.BatchesMaxAge = 0 // no limit
	case r.BatchesMaxAge == 0:
		r.BatchesMaxAge = 30 * 24 * time.Hour
	}
	switch {
	case r.JobsMaxMsgsPerSubject < 0:
		r.JobsMaxMsgsPerSubject = -1
	case r.JobsMaxMsgsPerSubject == 0:
		r.JobsMaxMsgsPerSubject = DefaultJobsMaxMsgsPerSubject
	}
	if r.JobsMaxBytes <= 0 {
		r.JobsMaxBytes = -1
	}
	return r
}

// Provision creates or updates every resource. It is safe to run concurrently from
// several processes.
func Provision(ctx context.Context, js jetstream.JetStream, r Resources) error {
	r = r.withDefaults()
	type step struct {
		name string
		fn   func(context.Context) error
	}
	steps := []step{
		{"stream " + events.StreamJobs, func(ctx context.Context) error {
			cfg, err := keepWaiting(ctx, js, jobsStream(r))
			if err == nil {
				_, err = js.CreateOrUpdateStream(ctx, cfg)
			}
			return err
		}},
		{"stream " + events.StreamEvents, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, eventsStream(r))
			return err
		}},
		{"bucket " + kvstore.BucketJobs, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: kvstore.BucketJobs,
				Description: "sheetpipe jobs", History: kvstore.JobsHistory, Storage: jetstream.FileStorage, Replicas: r.Replicas})
			return err
		}},
		{"bucket " + kvstore.BucketConversations, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: kvstore.BucketConversations,
				Description: "sheetpipe LLM conversations", History: 1, Storage: jetstream.FileStorage, Replicas: r.Replicas})
			return err
		}},
		{"bucket " + kvstore.BucketBatches, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: kvstore.BucketBatches,
				Description: "sheetpipe batches: the jobs of each", History: 1, Storage: jetstream.FileStorage,
				Replicas: r.Replicas, TTL: r.BatchesMaxAge})
			return err
		}},
		{"bucket " + kvstore.BucketActive, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, activeStream(r))
			return err
		}},
		{"bucket " + kvstore.BucketQueue, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: kvstore.BucketQueue,
				Description: "sheetpipe unfinished jobs per user (the queue limits' tally)", History: 1,
				Storage: jetstream.FileStorage, Replicas: r.Replicas})
			return err
		}},
		{"bucket " + kvstore.BucketDependents, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: kvstore.BucketDependents,
				Description: "sheetpipe depends_on index: <dependency>.<dependent>", History: 1, Storage: jetstream.FileStorage, Replicas: r.Replicas})
			return err
		}},
		{"bucket " + kvstore.BucketUsage, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: kvstore.BucketUsage,
				Description: "sheetpipe LLM usage per user and day: <base64url user>.<YYYY-MM-DD>", History: 1, Storage: jetstream.FileStorage, Replicas: r.Replicas})
			return err
		}},
		{"bucket " + BucketUserSlots, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, userSlotsBucket(r))
			return err
		}},
		{"consumer " + ConsumerDependents, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, events.StreamEvents, dependentsConsumer(r))
			return err
		}},
		{"object store " + BucketPDFs, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: BucketPDFs,
				Description: "sheetpipe PDFs", Storage: jetstream.FileStorage, Replicas: r.Replicas})
			return err
		}},
		{"bucket " + BucketPDFCache, func(ctx context.Context) error {
			return provisionPDFCache(ctx, js, r)
		}},
	}
	steps = append(steps, step{"consumer " + ConsumerWebhooks, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateConsumer(ctx, events.StreamEvents, webhookConsumer(r))
		return err
	}})
	for _, q := range events.Queues() {
		cfg := ConsumerConfig(q, r)
		steps = append(steps, step{"consumer " + q.Durable(), func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, events.StreamJobs, cfg)
			return err
		}})
	}
	for _, s := range steps {
		if err := retry(ctx, s.fn); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrProvision, s.name, err)
		}
		// Consumers may only have as many replicas as their stream already has.
		if stream, ok := strings.CutPrefix(s.name, "stream "); ok {
			if err := waitReplicas(ctx, js, stream, r.Replicas); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrProvision, s.name, err)
			}
		}
	}
	return nil
}

// provisionPDFCache creates or updates the pdf_cache bucket with the largest size
// the server can reserve (see BucketPDFCache).
func provisionPDFCache(ctx context.Context, js jetstream.JetStream, r Resources) error {
	for size := int64(PDFCacheMaxBytes); ; size /= 2 {
		_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketPDFCache,
			Description: "sheetpipe PDFs by LaTeX content hash", History: 1, Storage: jetstream.FileStorage,
			Replicas: r.Replicas, TTL: PDFCacheMaxAge, MaxBytes: size, MaxValueSize: PDFCacheMaxValue + 1024})
		var api *jetstream.APIError
		if !errors.As(err, &api) || api.ErrorCode != jsStorageResourcesExceeded {
			return err
		}
		if size/2 < PDFCacheMinBytes {
			return fmt.Errorf("the server cannot reserve even %d MiB of storage for the PDF cache; "+
				"give the data dir more free disk (docs/operations.md, Disk): %w", PDFCacheMinBytes>>20, err)
		}
	}
}

// jsStorageResourcesExceeded is JetStream's error code for a stream's MaxBytes
// that the server's storage cannot reserve.
const jsStorageResourcesExceeded = 10047

// replicaWait bounds the wait for a stream to reach its replica count.
const replicaWait = time.Minute

// waitReplicas waits until stream runs on n peers, as it does a while after its
// replicas were raised.
func waitReplicas(ctx context.Context, js jetstream.JetStream, stream string, n int) error {
	if n <= 1 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, replicaWait)
	defer cancel()
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			if c := s.CachedInfo().Cluster; c != nil && c.Leader != "" && len(c.Replicas)+1 >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream did not reach %d replicas within %s", n, replicaWait)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func jobsStream(r Resources) jetstream.StreamConfig {
	var subjects []string
	for _, q := range events.Queues() {
		subjects = append(subjects, q.Subject())
	}
	return jetstream.StreamConfig{
		Name:        events.StreamJobs,
		Description: "sheetpipe job requests and stage tickets",
		Subjects:    subjects,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    r.Replicas,
		Duplicates:  r.Duplicates,
		MaxMsgSize:  1 << 20,
		// Bounded so that a flood on jobs.prompt meets a publish error at the
		// client instead of filling the disk (docs/limits.md). Per subject, so
		// that prompts waiting never stop a stage from publishing its tickets.
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: r.JobsMaxMsgsPerSubject > 0,
		MaxMsgsPerSubject:    r.JobsMaxMsgsPerSubject,
		MaxBytes:             r.JobsMaxBytes,
		MaxMsgs:              -1,
	}
}

// keepWaiting raises the bounds of cfg, the JOBS stream's, to what the stream
// already holds: the server enforces a lowered MaxMsgsPerSubject or MaxBytes
// on update by deleting the oldest messages, which would lose waiting requests
// and tickets. The bound takes its configured value at a later start, once the
// stream holds less.
func keepWaiting(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.StreamConfig, error) {
	if cfg.MaxMsgsPerSubject <= 0 && cfg.MaxBytes <= 0 {
		return cfg, nil
	}
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return cfg, err
	}
	if cfg.MaxBytes > 0 && int64(info.State.Bytes) > cfg.MaxBytes {
		cfg.MaxBytes = int64(info.State.Bytes)
	}
	if cfg.MaxMsgsPerSubject > 0 {
		for _, n := range info.State.Subjects {
			cfg.MaxMsgsPerSubject = max(cfg.MaxMsgsPerSubject, int64(n))
		}
	}
	return cfg, nil
}

// activeStream is the stream of KV bucket active, made as nats.go makes a
// bucket's but for one setting: messages may be deleted one by one, which is how
// a record is removed at the revision it was written (kvstore.Store.Deactivate)
// with no delete marker left to pile up.
func activeStream(r Resources) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + kvstore.BucketActive,
		Description:       "sheetpipe jobs a stage may still act on (the sweeper's index)",
		Subjects:          []string{"$KV." + kvstore.BucketActive + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          r.Replicas,
		Discard:           jetstream.DiscardNew,
		AllowRollup:       true,
		AllowDirect:       true,
		Duplicates:        2 * time.Minute,
	}
}

func eventsStream(r Resources) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        events.StreamEvents,
		Description: "sheetpipe status events and rejections",
		Subjects:    []string{events.SubjectStatus, events.SubjectRejected, events.SubjectStatusAgain},
		// An event published again is stored as the event it repeats.
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: events.SubjectStatusAgain, Destination: events.SubjectStatus},
		Retention:        jetstream.LimitsPolicy,
		Storage:          jetstream.FileStorage,
		Replicas:         r.Replicas,
		MaxAge:           r.EventsMaxAge,
		Duplicates:       r.Duplicates,
	}
}

// ConsumerConfig is the durable pull consumer of one queue.
func ConsumerConfig(q events.Queue, r Resources) jetstream.ConsumerConfig {
	r = r.withDefaults()
	return jetstream.ConsumerConfig{
		Durable:       q.Durable(),
		Description:   "sheetpipe " + string(q.Stage) + " stage, " + string(q.Priority) + " priority",
		FilterSubject: q.Subject(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       r.AckWait,
		MaxDeliver:    r.MaxDeliver,
		MaxAckPending: 10000,
		Replicas:      r.Replicas,
	}
}

// webhookConsumer is the consumer of status events shared by the webhook senders.
// It starts with the events published after its creation: before it existed no
// job could ask for a webhook.
func webhookConsumer(r Resources) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerWebhooks,
		Description:   "sheetpipe webhook deliveries of final status events",
		FilterSubject: events.SubjectStatus,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckWait:       r.AckWait,
		MaxDeliver:    r.WebhookAttempts,
		MaxAckPending: 1000,
		Replicas:      r.Replicas,
	}
}

// dependentsConsumer follows the status events from its creation on (events
// older than sheetd's depends_on index wake nobody), one process at a time per
// event. A failed wake-up is retried a few times; the sweeper re-checks waiting
// jobs after that.
func dependentsConsumer(r Resources) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerDependents,
		Description:   "sheetpipe: wakes the jobs that depend on a job whose run ended",
		FilterSubject: events.SubjectStatus,
		// No acks: a wake-up that fails is retried in place and then left to the
		// sweeper, which re-checks every waiting job; acking each of a job's
		// seven-odd events was a fifth of the pipeline's JetStream operations.
		AckPolicy:     jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		Replicas:      r.Replicas,
	}
}

// retry runs fn up to ten times over about ten seconds: concurrent creates of one
// resource by several instances can fail transiently, and so does a consumer
// update while its stream is still growing to more replicas.
func retry(ctx context.Context, fn func(context.Context) error) error {
	var err error
	pause := 50 * time.Millisecond
	for range 10 {
		if err = fn(ctx); err == nil {
			return nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
	return err
}

// BucketUserSlots holds the places of the per-user concurrency cap
// (SHEETPIPE_USER_CONCURRENCY, docs/fairness.md): key
// <stage>.<hash of user>.<i>, value the holder and its lease's expiry. Keys of
// users gone quiet age out after a day (a held place is rewritten with every
// heartbeat).
const BucketUserSlots = "user_slots"

func userSlotsBucket(r Resources) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: BucketUserSlots, Description: "sheetpipe per-user concurrency places",
		History: 1, Storage: jetstream.FileStorage, Replicas: r.Replicas, TTL: 24 * time.Hour}
}
