package kvstore

import "errors"

var (
	// ErrNotFound means no job or conversation has that id.
	ErrNotFound = errors.New("not found")
	// ErrExists means Create found the id taken.
	ErrExists = errors.New("already exists")
	// ErrNoChange, returned by an update function, ends Update without a write.
	ErrNoChange = errors.New("no change")
	// ErrConflict means a delete found the key at another revision than the one
	// given: it was written (or deleted) since it was read.
	ErrConflict = errors.New("changed since read")
	// ErrNotMeta means a Describe function changed more of the job than its
	// description, tags, MetaSeq, MetaError and Usage; nothing was written.
	ErrNotMeta = errors.New("changes more than description and tags")
	// ErrContention means the CAS loop gave up after too many revision mismatches.
	ErrContention = errors.New("too many concurrent updates")
)
