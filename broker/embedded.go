package broker

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is an in-process JetStream server.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a JetStream server storing its data in storeDir and listening
// on listen ("host:port"; port -1 picks a free one). It returns once the server
// accepts connections.
func StartEmbedded(storeDir, listen string) (*Embedded, error) {
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
	return &Embedded{srv: srv}, nil
}

// ClientURL is the nats:// URL clients use to reach the server.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
