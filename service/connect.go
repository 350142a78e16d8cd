package service

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// InboxPrefix is the subject prefix of the replies sheetd receives (JetStream API
// answers, ordered-consumer deliveries): NATS permissions let sheetd alone
// subscribe to it, so a client allowed _INBOX.> never sees job values or
// conversations meant for sheetd.
const InboxPrefix = "_INBOX_sheetd"

// connect joins url with the credentials and TLS settings of cfg. The connection
// reconnects for ever; every asynchronous error the server reports (a permission
// violation, a slow consumer) is logged.
func connect(url string, cfg Config, log *slog.Logger) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name("sheetd"),
		nats.CustomInboxPrefix(InboxPrefix),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on a deliberate drain or close
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats async error", "subject", sub.Subject, "error", err)
				return
			}
			log.Error("nats async error", "error", err)
		}),
	}, authOptions(cfg)...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nc, nil
}

// authOptions are the login and TLS options for NATS_URL, or for the embedded
// server when SHEETPIPE_NATS_CONFIG gives it users; without one it needs none.
func authOptions(cfg Config) []nats.Option {
	if cfg.NATSURL == "" && cfg.NATSConfig == "" {
		return nil
	}
	var opts []nats.Option
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSUser != "" {
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword))
	}
	if cfg.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSTLSCA))
	}
	if cfg.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSTLSCert, cfg.NATSTLSKey))
	}
	return opts
}

// publishAsyncTimeout fails an asynchronous publish not acknowledged in this
// time. Without it the client fails such a publish only on a reconnect, so one
// sent to a stream whose leader was killed stays pending for ever (the stages
// also bound their own waits for these acknowledgements).
const publishAsyncTimeout = 10 * time.Second

// newJetStream is the JetStream client of sheetd on nc: every request without a
// deadline of its own gets the client's default (5s), every asynchronous publish
// publishAsyncTimeout.
func newJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishAsyncTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}
