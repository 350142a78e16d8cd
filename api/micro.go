package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sheetpipe/sheetpipe/events"
)

// StartMicro adds the NATS micro service "sheetpipe" on nc: one endpoint per
// operation on subject sheetpipe.<operation>, in the default queue group so every
// sheetd shares the requests. It returns once the server has the subscriptions.
func (a *API) StartMicro(nc *nats.Conn) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.svc != nil:
		return errors.New("micro service already started")
	case a.stopping:
		return errors.New("micro service already stopped")
	}
	served := make(map[string]*microEndpoint, len(endpoints))
	for _, ep := range endpoints {
		served[endpointName(ep.op)] = &microEndpoint{a: a, nc: nc, ep: ep, sem: make(chan struct{}, maxInFlight)}
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        events.ServiceName,
		Version:     events.ServiceVersion,
		Description: "sheetpipe control API: submit worksheet jobs, follow and change them",
		Metadata:    map[string]string{"http": "/jobs"},
		StatsHandler: func(e *micro.Endpoint) any {
			if m, ok := served[e.Name]; ok {
				return m.stats.snapshot()
			}
			return nil
		},
		ErrorHandler: func(_ micro.Service, e *micro.NATSError) {
			a.log.Warn("micro service error", "subject", e.Subject, "error", e.Description)
		},
	})
	if err != nil {
		return fmt.Errorf("add micro service %s: %w", events.ServiceName, err)
	}
	g := svc.AddGroup(events.ServiceName)
	for _, ep := range endpoints {
		md := map[string]string{"description": ep.doc, "request": ep.request, "response": ep.response,
			"errors": ep.errors + ", 413 body too large, 500 internal"}
		name := endpointName(ep.op)
		if err := g.AddEndpoint(name, served[name], micro.WithEndpointSubject(ep.op), micro.WithEndpointMetadata(md)); err != nil {
			return errors.Join(fmt.Errorf("add endpoint %s: %w", ep.op, err), svc.Stop())
		}
	}
	// Once StartMicro returns, the server knows the subscriptions: a request from
	// any connection reaches the service.
	if err := nc.FlushTimeout(a.cfg.Timeout); err != nil {
		return errors.Join(fmt.Errorf("flush micro service subscriptions: %w", err), svc.Stop())
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
	err := svc.Stop()
	a.inFlight.Wait()
	if err != nil {
		return fmt.Errorf("stop micro service: %w", err)
	}
	return nil
}

// microEndpoint serves one endpoint. Each request runs in its own goroutine, at
// most maxInFlight at once, under the per-request deadline, so one slow request
// holds up no other. The reply is published on the request's reply subject
// directly rather than through micro.Request: that would race with micro's
// bookkeeping, which reads the request's error once Handle returns.
type microEndpoint struct {
	a     *API
	nc    *nats.Conn
	ep    endpoint
	sem   chan struct{}
	stats endpointStats
}

func (m *microEndpoint) Handle(req micro.Request) {
	data, reply := req.Data(), req.Reply()
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
// based on another), and counts the request.
func (m *microEndpoint) respond(ctx context.Context, reply, jobID string, v any, start time.Time, err error) {
	msg := &nats.Msg{Subject: reply}
	if err == nil {
		msg.Data, err = json.Marshal(v)
	}
	if err != nil {
		code := codeOf(err)
		m.a.failed(ctx, "nats", m.ep.op, jobID, code, err)
		msg.Data, _ = json.Marshal(events.ErrorReply{Error: messageOf(err), Revision: events.RevisionOf(err)})
		msg.Header = nats.Header{
			micro.ErrorHeader:     []string{headerSafe(messageOf(err))},
			micro.ErrorCodeHeader: []string{strconv.Itoa(code)},
		}
	}
	m.stats.done(time.Since(start), err)
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
