//go:build !linux

package latex

// limitFiles is a no-op where prlimit(2) does not exist: only the timeout
// bounds what pdflatex writes there.
func limitFiles(int, uint64) error { return nil }
