package latex

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// limitFiles caps the size of every file the running process pid writes at
// maxBytes (it gets SIGXFSZ beyond) and forbids core dumps. It runs right after
// the start, long before pdflatex has written anything sizeable.
func limitFiles(pid int, maxBytes uint64) error {
	for _, l := range []struct {
		resource int
		max      uint64
	}{{unix.RLIMIT_FSIZE, maxBytes}, {unix.RLIMIT_CORE, 0}} {
		var cur unix.Rlimit
		if err := unix.Prlimit(pid, l.resource, nil, &cur); err != nil {
			return fmt.Errorf("get rlimit %d: %w", l.resource, err)
		}
		lim := unix.Rlimit{Cur: min(cur.Cur, l.max), Max: min(cur.Max, l.max)}
		if err := unix.Prlimit(pid, l.resource, &lim, nil); err != nil {
			return fmt.Errorf("set rlimit %d: %w", l.resource, err)
		}
	}
	return nil
}
