package broker

import "time"

// WithDiskChecks sets how often the disk guard looks; 0 only when CheckDisk is
// called.
func WithDiskChecks(every time.Duration) EmbeddedOption {
	return func(o *embeddedOptions) { o.diskChecks = every }
}

// CheckDisk runs one check of the disk guard.
func (e *Embedded) CheckDisk() { e.guard.check() }
