package latex

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// workRootName is the directory under Config.TempDir that holds every
	// Compiler's work area.
	workRootName = "sheetpipe-compile"
	// rootLockName serialises creating a work area and sweeping stale ones.
	rootLockName = ".lock"
	lockSuffix   = ".lock"
	// rootLockWait bounds the wait for another process's sweep.
	rootLockWait = 10 * time.Second
)

// workArea is one Compiler's directory, <TempDir>/sheetpipe-compile/<pid>-<n>,
// which holds a job-* directory per running compile. Its lock file <dir>.lock
// is flocked for as long as the Compiler lives (the open file closes, and the
// lock goes, when the Compiler is garbage collected or the process dies),
// so another process can tell a live area from a crash's leftovers, across
// pid namespaces and pid reuse.
type workArea struct {
	dir  string
	lock *os.File
}

// newWorkArea creates a work area under tempDir after removing every area
// whose owner is gone. Both happen under the root's lock: a sweep never sees
// an area between its creation and its lock.
func newWorkArea(tempDir string) (*workArea, error) {
	root := filepath.Join(tempDir, workRootName)
	if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("latex: create %s: %w", root, err)
	}
	if err := checkOwnDir(root); err != nil {
		return nil, err
	}
	guard, err := os.OpenFile(filepath.Join(root, rootLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("latex: open %s lock: %w", root, err)
	}
	defer guard.Close() // releases the root lock
	if err := flockWait(guard, rootLockWait); err != nil {
		return nil, fmt.Errorf("latex: lock %s: %w", root, err)
	}
	if err := sweep(root); err != nil {
		return nil, err
	}
	lock, err := os.CreateTemp(root, fmt.Sprintf("%d-*%s", os.Getpid(), lockSuffix))
	if err != nil {
		return nil, fmt.Errorf("latex: create work area lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("latex: lock work area: %w", err)
	}
	dir := strings.TrimSuffix(lock.Name(), lockSuffix)
	if err := os.Mkdir(dir, 0o700); err != nil {
		lock.Close()
		return nil, fmt.Errorf("latex: create work area: %w", err)
	}
	return &workArea{dir: dir, lock: lock}, nil
}

// jobDir creates the work directory of one compile. A work area removed
// under a live Compiler (a /tmp cleaner) is recreated.
func (a *workArea) jobDir() (string, error) {
	dir, err := os.MkdirTemp(a.dir, "job-")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(a.dir, 0o700); err == nil {
			dir, err = os.MkdirTemp(a.dir, "job-")
		}
	}
	if err != nil {
		return "", fmt.Errorf("latex: create work dir: %w", err)
	}
	return dir, nil
}

// sweep removes, under root, every work area whose lock nobody holds, and
// every directory without a lock file. The caller holds the root lock.
func sweep(root string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("latex: read %s: %w", root, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(root, name)
		switch {
		case name == rootLockName || name == formatDirName:
		case strings.HasSuffix(name, lockSuffix):
			stale, err := unlocked(path)
			if err != nil {
				errs = append(errs, err)
			} else if stale {
				errs = append(errs, removeStale(strings.TrimSuffix(path, lockSuffix)), removeStale(path))
			}
		case e.IsDir():
			if _, err := os.Lstat(path + lockSuffix); errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, removeStale(path))
			}
		}
	}
	return errors.Join(errs...)
}

// unlocked reports whether the lock file at path is held by nobody.
func unlocked(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("latex: open %s: %w", path, err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("latex: lock %s: %w", path, err)
	}
	return true, nil
}

func removeStale(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("latex: remove stale work dir: %w", err)
	}
	return nil
}

// flockWait takes an exclusive flock on f, retrying for at most wait.
func flockWait(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOwnDir refuses a root that is not a real directory of this user with
// no write access for others: in a shared /tmp another user could have put it
// there.
func checkOwnDir(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("latex: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s must be a directory of uid %d that only it can write (remove it)",
			ErrInvalidConfig, path, os.Geteuid())
	}
	return nil
}
