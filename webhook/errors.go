package webhook

import (
	"errors"
	"fmt"

	"github.com/sheetpipe/sheetpipe/events"
)

var (
	// ErrDisabled refuses a webhook_url when this process has no webhook secret.
	ErrDisabled = fmt.Errorf("%w: webhooks are disabled: set SHEETPIPE_WEBHOOK_SECRET", events.ErrInvalid)
	// ErrForbiddenAddress marks a webhook host that is or resolves to an address
	// webhooks may not reach (loopback, private, link-local...).
	ErrForbiddenAddress = errors.New("address not allowed for webhooks")
)
