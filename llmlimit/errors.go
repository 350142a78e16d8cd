package llmlimit

import "errors"

// ErrPastDeadline wraps context.DeadlineExceeded when a call's slot is later
// than its context's deadline: it is refused at once, without reserving.
var ErrPastDeadline = errors.New("llm rate limit: next free slot is past the call's deadline")

// ErrConfig is wrapped by New's errors about its Config.
var ErrConfig = errors.New("llm rate limit: bad configuration")
