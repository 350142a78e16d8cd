package broker

import "errors"

var (
	// ErrEmbedded means the embedded NATS server could not start.
	ErrEmbedded = errors.New("embedded nats server")
	// ErrProvision means a JetStream resource could not be created or updated.
	ErrProvision = errors.New("provision jetstream")
)
