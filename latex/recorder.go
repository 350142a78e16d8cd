package latex

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// kpsewhichTimeout bounds the one kpsewhich call New makes.
const kpsewhichTimeout = 10 * time.Second

// findTexRoots asks the kpsewhich next to pdflatex (else the one on PATH) for
// the TeX trees ($TEXMF) and the directories of texmf.cnf ($TEXMFCNF), the
// only places outside its work directory a document may read, and the only
// ones the jail shows besides the system's binaries and libraries. Relative
// and home trees are dropped: in the sandbox they lie inside the work
// directory.
func findTexRoots(pdflatex, envPath string) ([]string, error) {
	kpsewhich := filepath.Join(filepath.Dir(pdflatex), "kpsewhich")
	if _, err := os.Stat(kpsewhich); err != nil {
		if kpsewhich, err = exec.LookPath("kpsewhich"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoCompiler, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), kpsewhichTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kpsewhich, "-engine=pdftex", "-progname=pdflatex",
		"--expand-braces=$TEXMF:$TEXMFCNF")
	cmd.Env = []string{"PATH=" + envPath}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("latex: ask %s for the TeX trees: %w", kpsewhich, err)
	}
	var roots []string
	for _, r := range strings.Split(strings.TrimSpace(string(out)), ":") {
		r = strings.TrimPrefix(r, "!!")
		if filepath.IsAbs(r) {
			roots = append(roots, filepath.Clean(r))
		}
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("latex: kpsewhich reports no TeX tree in %q", out)
	}
	return roots, nil
}

// checkRecorder reads the -recorder file at path and describes the first
// violation: a file the run opened outside dir and roots, or a document write
// to the recorder file or the log (to hide a record), which also shows as a
// malformed recorder file. It returns "" when there is none. A missing recorder
// file is one: the run's reads are unknown (pdflatex given a format by path,
// without -progname, puts it next to the format, which may be read-only).
func checkRecorder(path, dir string, roots []string) (string, error) {
	f, err := openOutput(path)
	if errors.Is(err, os.ErrNotExist) {
		return "pdflatex wrote no recorder file " + recorderName, nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	logWrites := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kind, name, _ := strings.Cut(sc.Text(), " ")
		switch {
		case kind == "PWD":
		case kind != "INPUT" && kind != "OUTPUT":
			return "document overwrote the recorder file " + recorderName, nil
		case !allowedPath(name, dir, roots):
			return "document accessed a file outside the sandbox: " + name, nil
		case kind == "OUTPUT" && filepath.Clean(name) == recorderName:
			return "document wrote to the recorder file " + recorderName, nil
		case kind == "OUTPUT" && filepath.Clean(name) == logName:
			if logWrites++; logWrites > 1 {
				return "document wrote to the log " + logName, nil
			}
		}
	}
	if sc.Err() != nil {
		return "document overwrote the recorder file " + recorderName, nil
	}
	return "", nil
}

// allowedPath reports whether name, relative to dir or absolute, lies inside
// dir or one of roots once cleaned.
func allowedPath(name, dir string, roots []string) bool {
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	name = filepath.Clean(name)
	for _, root := range append([]string{dir}, roots...) {
		if name == root || strings.HasPrefix(name, strings.TrimSuffix(root, "/")+"/") {
			return true
		}
	}
	return false
}

// recordedOutputs returns the files the recorder file at path says were
// written, cleaned, sorted and each once.
func recordedOutputs(path string) ([]string, error) {
	f, err := openOutput(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "OUTPUT "); ok {
			out = append(out, filepath.Clean(name))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("latex: read %s: %w", filepath.Base(path), err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
