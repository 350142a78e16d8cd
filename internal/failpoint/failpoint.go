package failpoint

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

// EnvVar names the environment variable read at start.
const EnvVar = "SHEETPIPE_FAILPOINTS"

// Point names a place in a stage's handling of one message.
type Point string

// The points a stage passes, in order.
const (
	AfterClaim   Point = "after-claim"
	AfterWork    Point = "after-work"
	AfterWrite   Point = "after-write"
	AfterPublish Point = "after-publish"
)

// Points lists every point in the order a stage passes them.
var Points = []Point{AfterClaim, AfterWork, AfterWrite, AfterPublish}

// exitCode is the status an exit failpoint ends the process with.
const exitCode = 3

// armed holds the failpoints of this process; nil when none are set.
var armed atomic.Pointer[Set]

var logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))

func init() {
	spec := os.Getenv(EnvVar)
	if spec == "" {
		return
	}
	set, err := Parse(spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sheetd: %s=%q: %v\n", EnvVar, spec, err)
		os.Exit(2)
	}
	armed.Store(set)
	logger.Error("FAILPOINTS ARMED: this process will die on purpose; never set "+EnvVar+" outside tests",
		"failpoints", set.String())
}

// Inject fires the failpoint stage.point when it is armed for this hit; it
// returns otherwise. Disarmed, it costs one atomic load.
func Inject(stage events.Stage, point Point) {
	set := armed.Load()
	if set == nil {
		return
	}
	set.hit(string(stage) + "." + string(point))
}

// Armed reports the failpoints of this process ("" when none).
func Armed() string {
	if set := armed.Load(); set != nil {
		return set.String()
	}
	return ""
}

// Set is a parsed SHEETPIPE_FAILPOINTS value.
type Set struct {
	points map[string]*failpoint
	order  []string
	// fire ends the process; tests of this package replace it.
	fire func(name string, a action, hit int64)
}

type action string

const (
	actionExit action = "exit"
	actionKill action = "kill"
)

type failpoint struct {
	action action
	at     int64
	hits   atomic.Int64
}

func (s *Set) hit(name string) {
	fp, ok := s.points[name]
	if !ok {
		return
	}
	if n := fp.hits.Add(1); n == fp.at {
		s.fire(name, fp.action, n)
	}
}

// String is the set in its specification's syntax, in the order given.
func (s *Set) String() string {
	parts := make([]string, len(s.order))
	for i, name := range s.order {
		fp := s.points[name]
		parts[i] = fmt.Sprintf("%s=%s@%d", name, fp.action, fp.at)
	}
	return strings.Join(parts, ",")
}

// die ends the process at failpoint name, abruptly: no deferred function runs.
func die(name string, a action, hit int64) {
	logger.Error("FAILPOINT HIT: dying on purpose", "failpoint", name, "action", string(a), "hit", hit)
	if a == actionKill {
		if p, err := os.FindProcess(os.Getpid()); err == nil && p.Kill() == nil {
			// SIGKILL cannot be caught: the process ends within moments.
			time.Sleep(time.Second)
		}
	}
	os.Exit(exitCode)
}
