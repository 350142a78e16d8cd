package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// TestSecondSheetdOnDataDirNamesPid: a second sheetd process started with the
// settings of a running one exits with code 1 at once, naming the first one's
// pid, its data dir and what to do; the first one keeps serving.
func TestSecondSheetdOnDataDirNamesPid(t *testing.T) {
	s := newSetup(t, fakellm.Handler(func(fakellm.Request) fakellm.Reply { return fakellm.Reply{} }))
	first := s.start("first")
	second := start(t, "second", s.env())
	if code := second.wait(10 * time.Second); code != 1 {
		t.Fatalf("second sheetd exited with %d, want 1\n%s", code, second.stderr.String())
	}
	msg := second.stderr.String()
	for _, want := range []string{fmt.Sprintf("pid %d", first.cmd.Process.Pid), s.dataDir, "SHEETPIPE_DATA_DIR", "stop it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("second sheetd's error lacks %q:\n%s", want, msg)
		}
	}
	if _, ok := first.exited(); ok {
		t.Fatal("the first sheetd ended")
	}
	first.waitReady("http://" + s.httpAddr + "/readyz")
}
