package broker

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is an in-process JetStream server.
type Embedded struct {
	srv   *server.Server
	guard *diskGuard
}

// EmbeddedOption configures StartEmbedded.
type EmbeddedOption func(*embeddedOptions)

type embeddedOptions struct {
	log        *slog.Logger
	diskChecks time.Duration
}

// WithLogger logs the embedded server's storage events (disk full, space back,
// JetStream restarted) to log. Default slog.Default().
func WithLogger(log *slog.Logger) EmbeddedOption {
	return func(o *embeddedOptions) { o.log = log }
}

// EmbeddedConfig configures an embedded server.
type EmbeddedConfig struct {
	// StoreDir holds JetStream's data. Required.
	StoreDir string
	// Listen is the client address, "host:port" (port -1 picks a free one).
	// Anything but a loopback host needs authentication from ConfigFile.
	Listen string
	// ConfigFile is a nats-server configuration file (users and permissions,
	// TLS, ...; see deploy/nats/auth.conf), read with server.ProcessConfigFile.
	// Listen and StoreDir replace its address and store_dir, and JetStream is
	// always on. Empty: no authentication.
	ConfigFile string
}

// StartEmbedded starts a JetStream server with no configuration file storing
// its data in storeDir and listening on listen, which must then be a loopback
// address (see StartEmbeddedWith).
func StartEmbedded(storeDir, listen string, opts ...EmbeddedOption) (*Embedded, error) {
	return StartEmbeddedWith(EmbeddedConfig{StoreDir: storeDir, Listen: listen}, opts...)
}

// StartEmbeddedWith starts a JetStream server as c says and returns once it
// accepts connections. It refuses to listen on an address other hosts can
// reach (0.0.0.0, a LAN address, a host name) unless c.ConfigFile configures
// authentication: otherwise anyone who reaches it could read every job and
// publish forged tickets and status events. A disk guard (disk.go) keeps the
// server from writing StoreDir's file system full.
func StartEmbeddedWith(c EmbeddedConfig, options ...EmbeddedOption) (*Embedded, error) {
	o := embeddedOptions{log: slog.Default(), diskChecks: diskCheckEvery}
	for _, opt := range options {
		opt(&o)
	}
	host, portText, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrEmbedded, c.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("%w: listen port %q: %v", ErrEmbedded, portText, err)
	}
	opts := &server.Options{}
	if c.ConfigFile != "" {
		if opts, err = server.ProcessConfigFile(c.ConfigFile); err != nil {
			return nil, fmt.Errorf("%w: config file %s: %v", ErrEmbedded, c.ConfigFile, err)
		}
	}
	if !loopbackHost(host) && !hasAuth(opts) {
		return nil, fmt.Errorf("%w: listen address %s is not a loopback address and the server has no authentication, "+
			"so anyone who reaches it could read every job and forge status events: listen on 127.0.0.1 "+
			"(SHEETPIPE_NATS_LISTEN=127.0.0.1:%s), or set SHEETPIPE_NATS_CONFIG to a nats-server config file "+
			"with users (see deploy/nats/auth.conf) and log sheetd in with NATS_USER and NATS_PASSWORD or NATS_CREDS",
			ErrEmbedded, c.Listen, portText)
	}
	if opts.ServerName == "" {
		opts.ServerName = "sheetd-embedded"
	}
	opts.Host, opts.Port = host, port
	opts.JetStream, opts.StoreDir, opts.NoSigs = true, c.StoreDir, true
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 8 << 20
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEmbedded, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("%w: not ready after 15s (is %s already in use?)", ErrEmbedded, c.Listen)
	}
	return &Embedded{srv: srv, guard: startDiskGuard(srv, c.StoreDir, o.diskChecks, o.log)}, nil
}

// StorageErr is nil while the server's storage works, else why not (the disk is
// almost full, or a stream hit a write error); it matches events.ErrStorage.
func (e *Embedded) StorageErr() error { return e.guard.Err() }

// loopbackHost reports whether host is reachable from this machine only.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hasAuth reports whether opts make clients log in: users, nkeys, a token,
// a single user, operator JWTs or an auth callout.
func hasAuth(o *server.Options) bool {
	return len(o.Users) > 0 || len(o.Nkeys) > 0 || o.Authorization != "" || o.Username != "" ||
		len(o.TrustedOperators) > 0 || len(o.TrustedKeys) > 0 || o.AuthCallout != nil
}

// ClientURL is the nats:// URL clients use to reach the server.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.guard.close()
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
