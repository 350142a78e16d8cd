package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sheetpipe/sheetpipe/events"
	"github.com/sheetpipe/sheetpipe/worker"
)

// statusError is a webhook answer other than 2xx.
type statusError struct{ code int }

func (e *statusError) Error() string {
	if e.code >= 300 && e.code < 400 {
		return fmt.Sprintf("receiver answered %d (redirects are not followed)", e.code)
	}
	return fmt.Sprintf("receiver answered %d", e.code)
}

// retryable reports whether another attempt may succeed: the receiver is
// overloaded or down (5xx, 408, 429), or the request never got an answer.
func retryable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusRequestTimeout || se.code == http.StatusTooManyRequests
	}
	return !errors.Is(err, ErrForbiddenAddress)
}

// handle delivers one status event if it is final, holds up against KV (see
// package eventcheck) and its job has a webhook; its error tells the runner how
// to settle the message (package worker), and names nothing the handler has not
// logged already. What is signed and posted is the event built from the job's
// value at the event's revision, never the published bytes.
func (s *Sender) handle(ctx context.Context, msg jetstream.Msg) error {
	claim, ok := s.check.Decode(ctx, msg.Data())
	if !ok {
		return worker.Logged(fmt.Errorf("%w: undecodable status event", worker.ErrPermanent))
	}
	if !claim.Final() {
		return nil
	}
	ev, j, ok, err := s.check.Verify(ctx, claim)
	switch {
	case err != nil:
		s.log.Warn("webhook: load job", "job_id", claim.JobID, "error", err)
		return worker.Logged(err) // naked with back-off
	case !ok: // forged, or the job is gone: counted and logged
		return worker.Logged(fmt.Errorf("%w: status event does not hold up", worker.ErrPermanent))
	case j.WebhookURL == "":
		return nil
	}
	body, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("webhook: encode event", "job_id", ev.JobID, "error", err)
		return worker.Logged(fmt.Errorf("%w: %w", worker.ErrPermanent, err))
	}
	start := time.Now()
	err = s.post(ctx, j.WebhookURL, ev, body)
	if err != nil && ctx.Err() != nil {
		return ctx.Err() // shutting down: naked, another process delivers it
	}
	outcome, err := s.judge(msg, ev, j.WebhookURL, err)
	s.metrics.WebhookAttempt(outcome, time.Since(start))
	return err
}

// post sends one attempt: body (the verified event), signed, with the event's
// idempotency key "<job_id>:<revision>".
func (s *Sender) post(ctx context.Context, target string, ev events.StatusEvent, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(SignatureHeader, Sign(s.cfg.Secret, body))
	req.Header.Set(IdempotencyHeader, ev.MsgID())
	resp, err := s.client.Do(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err // its message would quote the whole URL
	}
	if err != nil {
		return err
	}
	// Drain a little so the connection can be reused; the answer is not read.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{code: resp.StatusCode}
	}
	return nil
}

// judge names the outcome of an attempt that ended with err, logs what needs an
// operator, and returns the error that settles msg: nil acks it, a retry naks
// it with back-off, the rest terminates it.
func (s *Sender) judge(msg jetstream.Msg, ev events.StatusEvent, target string, err error) (string, error) {
	attempt := delivered(msg)
	log := s.log.With("job_id", ev.JobID, "status", ev.Status, "host", host(target), "attempt", attempt)
	switch {
	case err == nil:
		log.Info("webhook delivered")
		return "delivered", nil
	case errors.Is(err, ErrForbiddenAddress):
		log.Error("webhook refused: the host now resolves to an address webhooks may not reach", "error", err)
		return "refused", worker.Logged(fmt.Errorf("%w: %w", worker.ErrPermanent, err))
	case !retryable(err):
		log.Error("webhook rejected by the receiver; not retried", "error", err)
		return "rejected", worker.Logged(fmt.Errorf("%w: %w", worker.ErrPermanent, err))
	case attempt >= s.maxDeliver && s.maxDeliver > 0:
		log.Error("webhook failed on every attempt; giving up", "error", err)
		return "failed", worker.Logged(fmt.Errorf("%w: %w", worker.ErrPermanent, err))
	default:
		delay := s.cfg.backoff(attempt)
		log.Warn("webhook failed; will retry", "error", err, "delay", delay)
		return "retry", &worker.RetryError{Delay: delay, Err: err}
	}
}

// delivered is msg's delivery count, the number of this attempt.
func delivered(msg jetstream.Msg) int {
	if md, err := msg.Metadata(); err == nil {
		return int(md.NumDelivered)
	}
	return 1
}

// host is the host of a webhook URL, for logs: the path and query may hold a
// receiver's token, so they are never logged.
func host(target string) string {
	if u, err := url.Parse(target); err == nil {
		return u.Host
	}
	return ""
}
