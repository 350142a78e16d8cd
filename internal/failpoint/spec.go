package failpoint

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sheetpipe/sheetpipe/events"
)

// ErrSpec marks a SHEETPIPE_FAILPOINTS value that cannot be parsed.
var ErrSpec = errors.New("bad failpoint specification")

// Parse reads a specification (see the package documentation). An unknown stage,
// point or action, a point the stage does not pass, a hit below 1 or a name given
// twice is an error wrapping ErrSpec.
func Parse(spec string) (*Set, error) {
	s := &Set{points: map[string]*failpoint{}, fire: die}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, fp, err := parseItem(item)
		if err != nil {
			return nil, err
		}
		if _, dup := s.points[name]; dup {
			return nil, fmt.Errorf("%w: %s given twice", ErrSpec, name)
		}
		s.points[name] = fp
		s.order = append(s.order, name)
	}
	if len(s.order) == 0 {
		return nil, fmt.Errorf("%w: no failpoint in %q", ErrSpec, spec)
	}
	return s, nil
}

// parseItem reads one name=action[@hit].
func parseItem(item string) (string, *failpoint, error) {
	name, act, ok := strings.Cut(item, "=")
	if !ok {
		return "", nil, fmt.Errorf("%w: %q is not name=action[@hit]", ErrSpec, item)
	}
	stage, point, ok := strings.Cut(name, ".")
	if !ok || !events.Stage(stage).Valid() || !slices.Contains(Points, Point(point)) {
		return "", nil, fmt.Errorf("%w: %q is not <stage>.<point> (stages %v, points %v)", ErrSpec, name, events.Stages, Points)
	}
	if events.Stage(stage) == events.StagePrompt && (Point(point) == AfterClaim || Point(point) == AfterWork) {
		return "", nil, fmt.Errorf("%w: the prompt stage has no %s point", ErrSpec, point)
	}
	fp := &failpoint{at: 1}
	act, hit, counted := strings.Cut(act, "@")
	if counted {
		n, err := strconv.ParseInt(hit, 10, 64)
		if err != nil || n < 1 {
			return "", nil, fmt.Errorf("%w: %s: hit %q is not a number >= 1", ErrSpec, name, hit)
		}
		fp.at = n
	}
	switch a := action(act); a {
	case actionExit, actionKill:
		fp.action = a
	default:
		return "", nil, fmt.Errorf("%w: %s: action %q is not exit or kill", ErrSpec, name, act)
	}
	return name, fp, nil
}
