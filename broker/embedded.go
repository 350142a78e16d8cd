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

// StartEmbedded starts a JetStream server storing its data in storeDir and listening
// on listen ("host:port"; port -1 picks a free one). It returns once the server
// accepts connections. A disk guard (disk.go) keeps the server from writing
// storeDir's file system full.
func StartEmbedded(storeDir, listen string, opts ...EmbeddedOption) (*Embedded, error) {
	o := embeddedOptions{log: slog.Default(), diskChecks: diskCheckEvery}
	for _, opt := range opts {
		opt(&o)
	}
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrEmbedded, listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("%w: listen port %q: %v", ErrEmbedded, portText, err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "sheetd-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEmbedded, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("%w: not ready after 15s (is %s already in use?)", ErrEmbedded, listen)
	}
	return &Embedded{srv: srv, guard: startDiskGuard(srv, storeDir, o.diskChecks, o.log)}, nil
}

// StorageErr is nil while the server's storage works, else why not (the disk is
// almost full, or a stream hit a write error); it matches kvstore.ErrStorage.
func (e *Embedded) StorageErr() error { return e.guard.Err() }

// ClientURL is the nats:// URL clients use to reach the server.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.guard.close()
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
