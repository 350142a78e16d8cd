package consumers

import (
	"fmt"
	"testing"

	"github.com/sheetpipe/sheetpipe/events"
)

// recent keeps at most its bound, forgets the oldest first, and hands each
// value out once.
func TestRecentJobs(t *testing.T) {
	t.Parallel()
	r := newRecent[events.Job](3)
	for i := range 4 {
		r.put(fmt.Sprint(i), &events.Job{ID: fmt.Sprint(i)}, uint64(i+10))
	}
	if j, _ := r.take("0"); j != nil {
		t.Fatal("the oldest of 4 jobs in a bound of 3 was kept")
	}
	for i := 1; i < 4; i++ {
		j, rev := r.take(fmt.Sprint(i))
		if j == nil || j.ID != fmt.Sprint(i) || rev != uint64(i+10) {
			t.Fatalf("job %d: got %v at %d", i, j, rev)
		}
		if j, _ := r.take(fmt.Sprint(i)); j != nil {
			t.Fatalf("job %d handed out twice", i)
		}
	}
	// A job written again is remembered at its last write, and forgetting its
	// older slot in the ring does not forget the newer value.
	r.put("a", &events.Job{ID: "a"}, 1)
	r.put("a", &events.Job{ID: "a"}, 2)
	r.put("b", &events.Job{ID: "b"}, 1)
	r.put("c", &events.Job{ID: "c"}, 1) // overwrites the ring slot of a@1
	if _, rev := r.take("a"); rev != 2 {
		t.Fatalf("job a at %d, want its last write 2", rev)
	}
}
