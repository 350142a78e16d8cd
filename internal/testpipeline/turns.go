package testpipeline

import (
	"slices"
	"testing"
)

// CheckTurns fails the test unless each of light's jobs left design (order is
// the jobs in the order they left it) before the 10th of flood's jobs that
// left design after mark (how many had left before the light user submitted):
// users take turns (docs/fairness.md).
func CheckTurns(t testing.TB, order []string, mark int, flood, light []string) {
	t.Helper()
	for _, id := range light {
		at := slices.Index(order, id)
		if at < 0 {
			t.Fatalf("light job %s never left design", id)
		}
		ahead := 0
		for _, other := range order[mark:at] {
			if slices.Contains(flood, other) {
				ahead++
			}
		}
		t.Logf("light job left design after %d flood jobs that left after its submission", ahead)
		if ahead >= 10 {
			t.Errorf("light job %s left design after %d of the flood's jobs that left after its submission, want at most 9 (before the 10th)", id, ahead)
		}
	}
}
