package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/internal/wait"
	"github.com/sheetpipe/sheetpipe/kvstore"
	"github.com/sheetpipe/sheetpipe/lifecycle"
	"github.com/sheetpipe/sheetpipe/metrics"
)

const (
	// maxDeliveriesSubject is where the server reports a JOBS message that reached
	// its consumer's MaxDeliver; the message stays in the stream until removed.
	maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + events.StreamJobs + ".*"
	// deadLetterTimeout bounds the handling of one advisory, retries included.
	deadLetterTimeout = 30 * time.Second
	// deadLetterAttempts bounds the retries of one advisory.
	deadLetterAttempts = 3
)

// maxDeliveriesAdvisory is the part of the server's max_deliver advisory we use.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// deadLetter settles JOBS messages that hit MaxDeliver. A ticket moves its job to
// waiting_manual when the job still waits for that ticket; a request on
// jobs.prompt is reported on jobs.rejected; a meta ticket leaves its job alone. Either way the message is deleted from
// the stream so the work queue does not keep it. Every process receives every
// advisory: the job write is a compare-and-swap and a message already deleted
// counts as handled, so the repeats do nothing.
type deadLetter struct {
	js      jetstream.JetStream
	jobs    jobs
	log     *slog.Logger
	metrics *metrics.Metrics
	stream  jetstream.Stream
	sub     *nats.Subscription

	loop
}

// start subscribes to the advisories; they are received from the moment it
// returns.
func (d *deadLetter) start(ctx context.Context) error {
	bindCtx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	stream, err := d.js.Stream(bindCtx, events.StreamJobs)
	if err != nil {
		return fmt.Errorf("bind stream %s: %w", events.StreamJobs, err)
	}
	nc := d.js.Conn()
	sub, err := nc.SubscribeSync(maxDeliveriesSubject)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", maxDeliveriesSubject, err)
	}
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("subscribe %s: %w", maxDeliveriesSubject, err)
	}
	d.stream, d.sub = stream, sub
	d.loop.start(ctx, d.run)
	return nil
}

// stop stops receiving, lets the advisory in hand finish until ctx ends (then
// cancels it) and unsubscribes.
func (d *deadLetter) stop(ctx context.Context) {
	d.loop.stop(ctx)
	_ = d.sub.Unsubscribe()
}

func (d *deadLetter) run(ctx context.Context) {
	for {
		m, err := d.sub.NextMsgWithContext(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, nats.ErrSlowConsumer):
			d.log.ErrorContext(ctx, "max-deliveries advisories dropped", "error", err)
			continue
		case err != nil:
			d.log.ErrorContext(ctx, "receive max-deliveries advisory", "error", err)
			if !wait.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		d.handle(m.Data)
	}
}

// handle settles the message an advisory names, retrying a failed attempt.
func (d *deadLetter) handle(data []byte) {
	ctx, cancel := context.WithTimeout(d.workCtx, deadLetterTimeout)
	defer cancel()
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(data, &adv); err != nil || adv.Stream != events.StreamJobs || adv.StreamSeq == 0 {
		d.log.WarnContext(ctx, "ignoring max-deliveries advisory", "advisory", string(data))
		return
	}
	var err error
	for attempt := 1; ; attempt++ {
		if err = d.settle(ctx, adv); err == nil {
			return
		}
		if attempt == deadLetterAttempts || !wait.Sleep(ctx, time.Duration(attempt)*200*time.Millisecond) {
			break
		}
	}
	d.log.ErrorContext(ctx, "dead-letter message", "consumer", adv.Consumer,
		"stream_seq", adv.StreamSeq, "error", err)
}

// settle dead-letters the message at adv.StreamSeq. A message already gone was
// settled by another process.
func (d *deadLetter) settle(ctx context.Context, adv maxDeliveriesAdvisory) error {
	msg, err := d.stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get message %d: %w", adv.StreamSeq, err)
	}
	if msg.Subject == events.SubjectMeta {
		// Description and tags never fail a job: the dead meta ticket is only
		// dropped (a later hand-off to compile sends a new one).
		deleted, err := d.delete(ctx, adv.StreamSeq)
		if deleted {
			d.log.ErrorContext(ctx, "meta ticket dropped after max deliveries", "stream_seq", adv.StreamSeq,
				"deliveries", adv.Deliveries, "ticket", string(msg.Data))
			d.metrics.DeadLettered("meta")
		}
		return err
	}
	if msg.Subject == events.SubjectPrompt {
		// Only the process whose delete succeeds reports the request, once.
		deleted, err := d.delete(ctx, adv.StreamSeq)
		if deleted {
			lifecycle.ReportRejected(ctx, d.js, d.log, msg.Subject, msg.Header.Get(nats.MsgIdHdr), "max deliveries")
			d.metrics.DeadLettered("request")
		}
		return err
	}
	if err := d.park(ctx, msg.Data, adv.Deliveries); err != nil {
		return err
	}
	_, err = d.delete(ctx, adv.StreamSeq)
	return err
}

// park moves the job of a dead ticket to waiting_manual if the job still waits for
// that ticket. A job that moved on gets its current hand-off re-published, as a
// redelivered stale ticket would do; a job a live worker runs is left to that
// worker (and to the sweeper should it die).
func (d *deadLetter) park(ctx context.Context, data []byte, deliveries uint64) error {
	t, err := events.DecodeTicket(data)
	if err != nil {
		d.log.WarnContext(ctx, "dead-lettered message is not a ticket", "error", err)
		return nil
	}
	j, _, err := d.jobs.Apply(ctx, t.JobID, lifecycle.DeadTicket(t, deliveries))
	var leased *lifecycle.LeasedError
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		return nil
	case errors.Is(err, lifecycle.ErrStale) && j.Seq > t.Seq:
		return d.jobs.HandOn(ctx, j)
	case errors.Is(err, lifecycle.ErrStale), errors.As(err, &leased):
		if leased != nil {
			d.log.InfoContext(ctx, "dead ticket's job is running; left to its worker", "job_id", t.JobID, "step", t.Stage)
		}
		return nil
	case err != nil:
		return err
	}
	d.log.WarnContext(ctx, "job parked after max deliveries", "job_id", j.ID, "step", t.Stage, "deliveries", deliveries)
	d.metrics.DeadLettered("ticket")
	return nil
}

// delete removes message seq from JOBS and reports whether this call removed it.
// A message that is already gone is not an error.
func (d *deadLetter) delete(ctx context.Context, seq uint64) (bool, error) {
	err := d.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	if _, gerr := d.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("delete message %d: %w", seq, err)
}
