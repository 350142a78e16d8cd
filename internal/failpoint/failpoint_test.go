package failpoint

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sheetpipe/sheetpipe/events"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		want    string
		wantErr string
	}{
		{"one", "design.after-claim=exit", "design.after-claim=exit@1", ""},
		{"list with hits and spaces", " compile.after-write=kill@2 , fix.after-publish=exit,", "compile.after-write=kill@2,fix.after-publish=exit@1", ""},
		{"prompt write", "prompt.after-write=exit@3", "prompt.after-write=exit@3", ""},
		{"empty", " , ", "", "no failpoint"},
		{"no action", "design.after-claim", "", "not name=action"},
		{"unknown stage", "render.after-claim=exit", "", "not <stage>.<point>"},
		{"unknown point", "design.before-claim=exit", "", "not <stage>.<point>"},
		{"prompt has no claim", "prompt.after-claim=exit", "", "prompt stage has no after-claim"},
		{"unknown action", "design.after-work=panic", "", `action "panic"`},
		{"hit zero", "design.after-work=exit@0", "", "hit \"0\""},
		{"hit text", "design.after-work=exit@two", "", "hit \"two\""},
		{"twice", "design.after-work=exit,design.after-work=kill", "", "given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Parse(tc.spec)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error %v, want ErrSpec containing %q", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.spec, err)
			}
			if got := set.String(); got != tc.want {
				t.Fatalf("Parse(%q) = %q, want %q", tc.spec, got, tc.want)
			}
		})
	}
}

// A failpoint fires on its hit only, counted per name.
func TestFiresOnItsHitOnly(t *testing.T) {
	set, err := Parse("design.after-work=exit@2,compile.after-claim=kill")
	if err != nil {
		t.Fatal(err)
	}
	var fired []string
	set.fire = func(name string, a action, hit int64) { fired = append(fired, fmt.Sprintf("%s/%s/%d", name, a, hit)) }
	for range 3 {
		set.hit("design.after-work")
		set.hit("compile.after-claim")
		set.hit("latex.after-work")
	}
	want := "compile.after-claim/kill/1,design.after-work/exit/2"
	if got := strings.Join(fired, ","); got != want {
		t.Fatalf("fired %s, want %s", got, want)
	}
}

// A process without SHEETPIPE_FAILPOINTS is disarmed: Inject returns.
func TestDisarmedByDefault(t *testing.T) {
	if os.Getenv(EnvVar) != "" {
		t.Skip(EnvVar + " is set for this test binary")
	}
	for _, p := range Points {
		Inject(events.StageDesign, p)
	}
	if Armed() != "" {
		t.Fatalf("armed %q without %s", Armed(), EnvVar)
	}
}

const helperEnv = "FAILPOINT_TEST_HELPER"

// TestHelperProcess is the child of TestProcessDies: it passes design.after-work
// three times, printing each pass.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process only")
	}
	for i := 1; i <= 3; i++ {
		fmt.Printf("pass %d\n", i)
		Inject(events.StageDesign, AfterWork)
	}
	os.Exit(0)
}

// The test binary re-runs itself armed: the process dies at the failpoint's hit,
// with the exit status of its action, and says so on stderr.
func TestProcessDies(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		wantCode int
		passes   string
		stderr   []string
	}{
		{"exit on the second hit", "design.after-work=exit@2", 3, "pass 1\npass 2\n",
			[]string{"FAILPOINTS ARMED", "design.after-work=exit@2", "FAILPOINT HIT", `"hit":2`}},
		{"kill on the first hit", "design.after-work=kill", -1, "pass 1\n",
			[]string{"FAILPOINTS ARMED", "FAILPOINT HIT", `"action":"kill"`}},
		{"other point never fires", "latex.after-work=exit", 0, "pass 1\npass 2\npass 3\n",
			[]string{"FAILPOINTS ARMED"}},
		{"bad specification", "design.after-work=explode", 2, "",
			[]string{"SHEETPIPE_FAILPOINTS", `action "explode"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"=1", EnvVar+"="+tc.spec)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.WaitDelay = 10 * time.Second
			err := cmd.Run()
			var exitErr *exec.ExitError
			if err != nil && !errors.As(err, &exitErr) {
				t.Fatalf("run helper: %v", err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tc.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			if got := stdout.String(); got != tc.passes {
				t.Fatalf("stdout %q, want %q", got, tc.passes)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func BenchmarkInjectDisarmed(b *testing.B) {
	for b.Loop() {
		Inject(events.StageDesign, AfterWork)
	}
}
