package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sheetpipe/sheetpipe/client"
	"github.com/sheetpipe/sheetpipe/events"
)

const (
	// connectTimeout makes a missing server fail fast.
	connectTimeout = 3 * time.Second
	// requestTimeout bounds one request to the server (a control request, a PDF
	// download).
	requestTimeout = 30 * time.Second
)

// connect opens a NATS connection named "sheetctl" and a client on it; the caller
// closes the connection.
func (a *app) connect() (*nats.Conn, *client.Client, error) {
	opts := []nats.Option{nats.Name("sheetctl"), nats.Timeout(connectTimeout)}
	if a.opts.creds != "" {
		opts = append(opts, nats.UserCredentials(a.opts.creds))
	}
	if a.opts.natsUser != "" || a.opts.natsPassword != "" {
		opts = append(opts, nats.UserInfo(a.opts.natsUser, a.opts.natsPassword))
	}
	where := redact(a.opts.server)
	nc, err := nats.Connect(a.opts.server, opts...)
	if errors.Is(err, nats.ErrNoServers) {
		return nil, nil, fmt.Errorf("connect to %s: no servers available (is sheetd running?)", where)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", where, err)
	}
	c, err := client.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("connect to %s: %w", where, err)
	}
	return nc, c, nil
}

// withClient connects, runs fn with the client and closes the connection.
func (a *app) withClient(fn func(c *client.Client) error) error {
	nc, c, err := a.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	return fn(c)
}

// refused passes a refusal by the service on as it is (its message names the job
// and the reason, and its code decides the exit status) and gives any other error
// the context of what was tried.
func refused(err error, format string, args ...any) error {
	var ce *events.ControlError
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// redact hides the secrets (password, or a token in the user part) of a
// comma-separated list of server URLs.
func redact(servers string) string {
	list := strings.Split(servers, ",")
	for i, s := range list {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); !ok {
			u.User = url.User("xxxxx")
		}
		list[i] = u.Redacted()
	}
	return strings.Join(list, ",")
}
