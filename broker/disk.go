package broker

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/sheetpipe/sheetpipe/events"
)

// The disk guard keeps the embedded server from writing its disk full.
//
// nats-server does not answer a write that fails on the disk (ENOSPC): the
// client waits for its timeout, and the stream keeps the write error until
// JetStream restarts, refusing every later write the same way even after space
// is freed. So the guard watches the data dir's free space every
// diskCheckEvery and, once less than the reserve is free, lowers the JetStream
// storage limit of the server's account below what is stored: the server then
// refuses every write at once with "resource limits exceeded for account"
// (JetStream error 10002, which kvstore.Storage classifies), before the disk is
// full, while reads go on. Once twice the reserve is free again it lifts the
// limit. A stream that hit a write error all the same (the disk filled faster
// than the guard looked) is found through the server's health check, and
// JetStream is restarted in place once there is room: that reloads the
// streams from disk and clears the error, without a restart of sheetd.
const (
	diskCheckEvery = 250 * time.Millisecond
	// The reserve is a tenth of the data dir's file system, within these bounds.
	minDiskReserve = 4 << 20
	maxDiskReserve = 256 << 20
)

// diskReserve is the free space the guard keeps on a file system of size bytes.
func diskReserve(size uint64) uint64 {
	return min(max(size/10, minDiskReserve), maxDiskReserve)
}

// diskGuard watches the embedded server's storage (see the comment above).
type diskGuard struct {
	every time.Duration // diskCheckEvery; 0: only when check is called (tests)
	srv   *server.Server
	dir   string
	jscf  server.JetStreamConfig
	log   *slog.Logger
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	limited bool  // the account's storage limit is lowered
	err     error // nil while storage is fine
}

func startDiskGuard(srv *server.Server, dir string, every time.Duration, log *slog.Logger) *diskGuard {
	g := &diskGuard{every: every, srv: srv, dir: dir, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if cfg := srv.JetStreamConfig(); cfg != nil {
		g.jscf = *cfg
	}
	g.check()
	go g.run()
	return g
}

func (g *diskGuard) run() {
	defer close(g.done)
	if g.every == 0 {
		<-g.stop
		return
	}
	t := time.NewTicker(g.every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.check()
		}
	}
}

func (g *diskGuard) close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

// Err is nil while storage works, else the reason it does not, matching
// events.ErrStorage.
func (g *diskGuard) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// check looks at the free space and the server's streams once, and limits,
// frees or restarts JetStream accordingly.
func (g *diskGuard) check() {
	free, size, err := diskSpace(g.dir)
	if err != nil {
		g.setErr(&events.StorageError{Reason: err.Error(), Err: err})
		return
	}
	reserve := diskReserve(size)
	g.mu.Lock()
	limited := g.limited
	g.mu.Unlock()
	low := free < reserve || (limited && free < 2*reserve)
	switch {
	case low && !limited:
		g.limit(true)
		g.log.Error("disk almost full: JetStream writes refused until space is freed",
			"data_dir", g.dir, "free_bytes", free, "reserve_bytes", reserve)
	case !low && limited:
		g.limit(false)
		g.log.Info("disk space back: JetStream writes accepted again", "data_dir", g.dir, "free_bytes", free)
	}
	broken := g.writeErrors()
	if broken != "" && !low {
		g.restartJetStream(broken)
		broken = g.writeErrors()
	}
	switch {
	case low:
		g.setErr(&events.StorageError{Reason: fmt.Sprintf("%s free in %s, less than the %s sheetd keeps free; writes are refused until %s are free",
			bytesText(free), g.dir, bytesText(reserve), bytesText(2*reserve)), Err: events.ErrStorage})
	case broken != "":
		g.setErr(&events.StorageError{Reason: broken, Err: events.ErrStorage})
	default:
		g.setErr(nil)
	}
}

func (g *diskGuard) setErr(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.err = err
}

// limit lowers (on) or lifts the JetStream storage limit of the server's
// account. A storage limit of 0 bytes refuses every write to a file stream;
// deletes, acks and reads go on.
func (g *diskGuard) limit(on bool) {
	maxStore := int64(-1)
	if on {
		maxStore = 0
	}
	limits := map[string]server.JetStreamAccountLimits{"": {MaxMemory: -1, MaxStore: maxStore, MaxStreams: -1,
		MaxConsumers: -1, MaxAckPending: -1, MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1}}
	if err := g.srv.GlobalAccount().UpdateJetStreamLimits(limits); err != nil {
		g.log.Error("set JetStream storage limit", "max_store", maxStore, "error", err)
		return
	}
	g.mu.Lock()
	g.limited = on
	g.mu.Unlock()
}

// writeErrors names the streams that hit a write error, or JetStream being
// disabled (as nats-server does on some write errors); "" when there is none.
func (g *diskGuard) writeErrors() string {
	if !g.srv.JetStreamEnabled() {
		return "JetStream is disabled after a write error"
	}
	h := g.srv.Healthz(&server.HealthzOptions{Details: true})
	var errs []string
	for _, e := range h.Errors {
		if strings.Contains(e.Error, "write error") {
			errs = append(errs, e.Error)
		}
	}
	return strings.Join(errs, "; ")
}

// restartJetStream restarts JetStream in place with its configuration at start,
// which reloads every stream from disk without the write error it had.
func (g *diskGuard) restartJetStream(reason string) {
	g.log.Warn("restarting JetStream to clear a write error", "reason", reason)
	if g.srv.JetStreamEnabled() {
		if err := g.srv.ShutdownJetStream(); err != nil {
			g.log.Error("stop JetStream", "error", err)
			return
		}
	}
	cfg := g.jscf
	cfg.StoreDir = g.dir // the server adds its "jetstream" folder again
	if err := g.srv.EnableJetStream(&cfg); err != nil {
		g.log.Error("restart JetStream", "error", err)
		return
	}
	g.mu.Lock()
	g.limited = false // a restarted account has the default limits
	g.mu.Unlock()
	g.log.Info("JetStream restarted")
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
