package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sheetpipe/sheetpipe/events"
)

// StartMicro adds the NATS micro service "sheetpipe" on nc: one endpoint per
// operation on subject sheetpipe.<operation>, in micro's default queue group so
// every sheetd shares the requests, and micro's PING, INFO and STATS control
// subjects ($SRV.<verb>, $SRV.<verb>.sheetpipe, $SRV.<verb>.sheetpipe.<id>). It
// returns once the server has the subscriptions.
//
// The service speaks micro's protocol with micro's types but is not built with
// micro.AddService: micro counts a request, and times it, only while the handler
// function runs, and an error only when the reply goes through micro.Request.
// Ours answer from their own goroutines later, so micro's STATS would show every
// request as taking microseconds and none as failing. Here STATS reports each
// endpoint's own counters, taken when the reply is sent.
func (a *API) StartMicro(nc *nats.Conn) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.svc != nil:
		return errors.New("micro service already started")
	case a.stopping:
		return errors.New("micro service already stopped")
	}
	svc := &service{
		id:      strings.ReplaceAll(uuid.NewString(), "-", ""),
		started: time.Now().UTC(),
	}
	for _, ep := range endpoints {
		svc.endpoints = append(svc.endpoints, &microEndpoint{
			a: a, nc: nc, ep: ep, sem: make(chan struct{}, maxInFlight),
			name: endpointName(ep.op), subject: events.ControlSubject(ep.op),
			metadata: map[string]string{"description": ep.doc, "request": ep.request, "response": ep.response,
				"errors": ep.errors + ", 413 body too large, 500 internal"},
		})
	}
	for _, m := range svc.endpoints {
		sub, err := nc.QueueSubscribe(m.subject, micro.DefaultQueueGroup, m.handle)
		if err != nil {
			return errors.Join(fmt.Errorf("subscribe endpoint %s: %w", m.ep.op, err), svc.stop())
		}
		svc.subs = append(svc.subs, sub)
	}
	for verb, answer := range map[micro.Verb]func() any{
		micro.PingVerb:  func() any { return micro.Ping{ServiceIdentity: svc.identity(), Type: micro.PingResponseType} },
		micro.InfoVerb:  func() any { return svc.info() },
		micro.StatsVerb: func() any { return svc.stats() },
	} {
		// Every instance, every sheetpipe, this one.
		for _, kind := range [][2]string{{"", ""}, {events.ServiceName, ""}, {events.ServiceName, svc.id}} {
			subject, err := micro.ControlSubject(verb, kind[0], kind[1])
			if err == nil {
				var sub *nats.Subscription
				sub, err = nc.Subscribe(subject, func(msg *nats.Msg) {
					data, _ := json.Marshal(answer())
					if err := msg.Respond(data); err != nil {
						a.log.Warn("micro control reply not sent", "subject", msg.Subject, "error", err.Error())
					}
				})
				svc.subs = append(svc.subs, sub)
			}
			if err != nil {
				return errors.Join(fmt.Errorf("subscribe %s of %s: %w", verb, events.ServiceName, err), svc.stop())
			}
		}
	}
	// Once StartMicro returns, the server knows the subscriptions: a request from
	// any connection reaches the service.
	if err := nc.FlushTimeout(a.cfg.Timeout); err != nil {
		return errors.Join(fmt.Errorf("flush micro service subscriptions: %w", err), svc.stop())
	}
	a.svc = svc
	return nil
}

// Stop stops the micro service: its subscriptions drain, and Stop waits for the
// requests in flight (each bounded by Config.Timeout) to be answered. Requests
// still delivered by the drain are answered one at a time. Stop is idempotent.
func (a *API) Stop() error {
	a.mu.Lock()
	svc := a.svc
	a.stopping = true
	a.mu.Unlock()
	if svc == nil {
		return nil
	}
	err := svc.stop()
	a.inFlight.Wait()
	if err != nil {
		return fmt.Errorf("stop micro service: %w", err)
	}
	return nil
}

// service is the micro service "sheetpipe" of one sheetd.
type service struct {
	id        string
	started   time.Time
	endpoints []*microEndpoint
	subs      []*nats.Subscription

	stopOnce sync.Once
	stopErr  error
}

func (s *service) identity() micro.ServiceIdentity {
	return micro.ServiceIdentity{Name: events.ServiceName, ID: s.id, Version: events.ServiceVersion,
		Metadata: map[string]string{"http": "/jobs"}}
}

func (s *service) info() micro.Info {
	info := micro.Info{
		ServiceIdentity: s.identity(),
		Type:            micro.InfoResponseType,
		Description:     "sheetpipe control API: submit worksheet jobs, follow and change them",
		Endpoints:       make([]micro.EndpointInfo, 0, len(s.endpoints)),
	}
	for _, m := range s.endpoints {
		info.Endpoints = append(info.Endpoints, micro.EndpointInfo{Name: m.name, Subject: m.subject,
			QueueGroup: micro.DefaultQueueGroup, Metadata: maps.Clone(m.metadata)})
	}
	return info
}

func (s *service) stats() micro.Stats {
	st := micro.Stats{
		ServiceIdentity: s.identity(),
		Type:            micro.StatsResponseType,
		Started:         s.started,
		Endpoints:       make([]*micro.EndpointStats, 0, len(s.endpoints)),
	}
	for _, m := range s.endpoints {
		e := m.stats.snapshot()
		e.Name, e.Subject, e.QueueGroup = m.name, m.subject, micro.DefaultQueueGroup
		st.Endpoints = append(st.Endpoints, &e)
	}
	return st
}

// stop drains every subscription: requests already delivered are still served.
func (s *service) stop() error {
	s.stopOnce.Do(func() {
		for _, sub := range s.subs {
			if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				s.stopErr = errors.Join(s.stopErr, fmt.Errorf("drain %s: %w", sub.Subject, err))
			}
		}
	})
	return s.stopErr
}

// microEndpoint serves one endpoint. Each request runs in its own goroutine, at
// most maxInFlight at once, under the per-request deadline, so one slow request
// holds up no other. Its stats count every request when its reply is sent, and
// time it from its arrival (waiting for a slot included) to then.
type microEndpoint struct {
	a        *API
	nc       *nats.Conn
	ep       endpoint
	name     string // micro endpoint names have no dots
	subject  string
	metadata map[string]string
	sem      chan struct{}
	stats    endpointStats
}

func (m *microEndpoint) handle(msg *nats.Msg) {
	data, reply := msg.Data, msg.Reply
	ctx, cancel := context.WithTimeout(context.Background(), m.a.cfg.Timeout)
	start := time.Now()
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		cancel()
		m.respond(context.Background(), reply, "", nil, start,
			fmt.Errorf("%w: %d %s requests in flight; try again", ErrBusy, maxInFlight, m.ep.op))
		return
	}
	serve := func() {
		defer func() { <-m.sem }()
		defer cancel()
		v, id, err := m.run(ctx, data)
		m.respond(ctx, reply, id, v, start, err)
	}
	m.a.mu.Lock()
	async := !m.a.stopping
	if async {
		m.a.inFlight.Add(1)
	}
	m.a.mu.Unlock()
	if !async {
		serve()
		return
	}
	go func() {
		defer m.a.inFlight.Done()
		serve()
	}()
}

func (m *microEndpoint) run(ctx context.Context, data []byte) (any, string, error) {
	if limit := m.a.cfg.MaxBodyBytes; int64(len(data)) > limit {
		return nil, "", fmt.Errorf("%w: body is %d bytes, more than the %d bytes allowed", ErrTooLarge, len(data), limit)
	}
	return m.ep.run(m.a, ctx, data)
}

// respond publishes the reply, or the error with micro's error headers and a JSON
// {"error"} body (with "revision", the job's current one, when the change was
// based on another), and counts the request (every error reply, 4xx or 5xx, as
// an error).
func (m *microEndpoint) respond(ctx context.Context, reply, jobID string, v any, start time.Time, err error) {
	msg := &nats.Msg{Subject: reply}
	if err == nil {
		msg.Data, err = json.Marshal(v)
	}
	var failure string
	if err != nil {
		code := codeOf(err)
		failure = strconv.Itoa(code) + ":" + messageOf(err)
		m.a.failed(ctx, "nats", m.ep.op, jobID, code, err)
		msg.Data, _ = json.Marshal(events.ErrorReply{Error: messageOf(err), Revision: events.RevisionOf(err)})
		msg.Header = nats.Header{
			micro.ErrorHeader:     []string{headerSafe(messageOf(err))},
			micro.ErrorCodeHeader: []string{strconv.Itoa(code)},
		}
		if qe := events.AsQueueFull(err); qe != nil {
			msg.Header.Set("Retry-After", strconv.Itoa(qe.RetryAfter))
		}
	}
	// Counted before the reply leaves: whoever has the reply finds it in STATS.
	m.stats.done(time.Since(start), failure)
	if reply == "" {
		return
	}
	// sheetd may publish where its callers may not ($KV.>, jobs.>, the JetStream
	// API): a reply goes only to an inbox, never to a subject the caller chose to
	// have sheetd write to.
	if !strings.HasPrefix(reply, nats.InboxPrefix) {
		m.a.log.WarnContext(ctx, "control reply refused: reply subject is not an inbox",
			"transport", "nats", "op", m.ep.op, "job_id", jobID, "reply", reply)
		return
	}
	if perr := m.nc.PublishMsg(msg); perr != nil {
		m.a.log.WarnContext(ctx, "control reply not sent", "transport", "nats", "op", m.ep.op, "job_id", jobID, "error", perr.Error())
	}
}

// headerSafe keeps a message on one header line.
func headerSafe(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
