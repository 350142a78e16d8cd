package service

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFile is the file in the data directory that an embedded sheetd holds an
// exclusive flock on while it runs; it contains the holder's pid.
const LockFile = "sheetd.lock"

// ErrDataDirInUse: another sheetd holds the data directory's lock.
var ErrDataDirInUse = errors.New("data dir in use")

// lockDataDir takes the exclusive lock on dir's LockFile without waiting and
// writes this process's pid into it. When another process holds it, the error
// names that process's pid and what to do. The lock lasts until release is
// called or the process ends (the kernel drops a dead process's flock).
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		_ = f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir lock %s: %w", path, err)
		}
		pid := strings.TrimSpace(string(b))
		if _, err := strconv.Atoi(pid); err != nil {
			pid = "unknown"
		}
		return nil, fmt.Errorf("%w: %s is used by another sheetd (pid %s, holding %s): stop it (kill %s), "+
			"or start this one with another SHEETPIPE_DATA_DIR and other ports (SHEETPIPE_HTTP_ADDR, SHEETPIPE_NATS_LISTEN)",
			ErrDataDirInUse, dir, pid, path, pid)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}

// probeListen fails at once, naming addr, when the embedded server could not
// listen on it (the server itself would only report it after its start timeout).
func probeListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("nats listen %s: %w (another sheetd or nats-server? stop it or set SHEETPIPE_NATS_LISTEN)", addr, err)
	}
	return ln.Close()
}
