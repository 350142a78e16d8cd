package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY...
	args string
}

// parseDockerfile splits the Dockerfile into stages of instructions.
func parseDockerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before the first FROM", path, in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

func find(stage []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// TestDockerfile checks what a Dockerfile linter would and what sheetd needs: a
// Go build stage and a Debian-slim runtime with texlive, pinned base images, no
// ADD of URLs, apt lists removed, a non-root user, sheetd and sheetctl,
// port 8080 and a health check on /readyz. (hadolint cannot be installed here:
// neither Debian nor npm ships its binary.)
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "../Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if from := build[0].args; !strings.HasPrefix(from, "golang:1.26") || !strings.HasSuffix(from, " AS build") {
		t.Errorf("build stage FROM %q, want golang:1.26... AS build", from)
	}
	if from := final[0].args; !regexp.MustCompile(`^debian:[a-z]+-slim$`).MatchString(from) {
		t.Errorf("runtime FROM %q, want debian:<release>-slim", from)
	}
	for _, st := range stages {
		image := strings.Fields(st[0].args)[0]
		if !strings.Contains(image, ":") || strings.HasSuffix(image, ":latest") {
			t.Errorf("FROM %s: pin a tag", image)
		}
		for _, add := range find(st, "ADD") {
			if regexp.MustCompile(`(?i)(https?|ftp)://|git@`).MatchString(add.args) {
				t.Errorf("ADD %s fetches a URL: download in a RUN with a checksum, or COPY", add.args)
			}
		}
		for _, run := range find(st, "RUN") {
			if strings.Contains(run.args, "apt-get install") {
				if !strings.Contains(run.args, "apt-get update") || !strings.Contains(run.args, "--no-install-recommends") ||
					!strings.Contains(run.args, "-y") || !strings.Contains(run.args, "rm -rf /var/lib/apt/lists") {
					t.Errorf("RUN %s: apt-get update, install -y --no-install-recommends and rm -rf /var/lib/apt/lists in one layer", run.args)
				}
			}
			if regexp.MustCompile(`\b(curl|wget)\b.*\|\s*(ba)?sh`).MatchString(run.args) {
				t.Errorf("RUN %s pipes a download into a shell", run.args)
			}
		}
	}

	runs := strings.Join(argsOf(find(final, "RUN")), " ")
	for _, pkg := range []string{"texlive-latex-base", "texlive-latex-recommended", "texlive-fonts-recommended", "ca-certificates"} {
		if !strings.Contains(runs, pkg) {
			t.Errorf("runtime stage does not install %s", pkg)
		}
	}
	users := find(final, "USER")
	if len(users) == 0 {
		t.Fatal("runtime stage has no USER: it would run as root")
	}
	if u, _, _ := strings.Cut(users[len(users)-1].args, ":"); u == "root" || u == "0" {
		t.Errorf("runtime USER %s is root", users[len(users)-1].args)
	}
	copies := strings.Join(argsOf(find(final, "COPY")), " ")
	if !strings.Contains(copies, "--from=build") || !strings.Contains(copies, "sheetd") || !strings.Contains(copies, "sheetctl") {
		t.Errorf("runtime stage COPY %q: want sheetd and sheetctl from the build stage", copies)
	}
	if ex := argsOf(find(final, "EXPOSE")); !slices.Contains(ex, "8080") {
		t.Errorf("EXPOSE %v, want 8080", ex)
	}
	hc := find(final, "HEALTHCHECK")
	if len(hc) != 1 || !strings.Contains(hc[0].args, "CMD") || !strings.Contains(hc[0].args, "127.0.0.1:8080/readyz") {
		t.Errorf("HEALTHCHECK %v, want one that checks /readyz on port 8080", hc)
	}
	if ep := argsOf(find(final, "ENTRYPOINT")); len(ep) != 1 || !strings.Contains(ep[0], "sheetd") {
		t.Errorf("ENTRYPOINT %v, want sheetd", ep)
	}
	known := sheetdEnvVars()
	for _, env := range find(final, "ENV") {
		for _, kv := range strings.Fields(env.args) {
			if k, _, _ := strings.Cut(kv, "="); !known[k] {
				t.Errorf("ENV %s: sheetd reads no such variable", k)
			}
		}
	}
}

// TestDockerignoreKeepsTheBuildInputs: every package sheetd and sheetctl are built
// from reaches the build context.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var ignored []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ignored = append(ignored, line)
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "../cmd/sheetd", "../cmd/sheetctl").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, _ := filepath.Abs("..")
	inputs := []string{"go.mod", "go.sum"}
	for _, dir := range strings.Fields(string(out)) {
		if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
			inputs = append(inputs, filepath.ToSlash(rel))
		}
	}
	for _, in := range inputs {
		for _, pat := range ignored {
			first := strings.Split(in, "/")[0]
			if ok, _ := filepath.Match(strings.TrimPrefix(pat, "/"), first); ok || pat == in {
				t.Errorf(".dockerignore %q excludes build input %s", pat, in)
			}
		}
	}
}

func argsOf(ins []instruction) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.args
	}
	return out
}
