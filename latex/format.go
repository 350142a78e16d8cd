package latex

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// formatDirName is the directory under the compile root that holds the
	// dumped formats, <key>.fmt each.
	formatDirName = "fmt"
	// formatVersion names the way formats are built (mylatexformat, the
	// preamble split, the build's command line); it is part of every key.
	formatVersion = "sheetpipe-fmt-v1 mylatexformat"
	// buildAfter is the compile of one preamble that builds its format: a
	// build costs about one plain compile, and most preambles are seen once.
	buildAfter = 2
	// maxSeen bounds the preambles whose compiles are counted.
	maxSeen = 4096
)

// beginDocumentRE finds a line of the preamble that mylatexformat's scan at
// load time would take for the start of the document.
var beginDocumentRE = regexp.MustCompile(`\\begin[^\n]*document`)

// splitPreamble returns the lines of source before the one that starts with
// \begin{document}: what a format holds. ok is false for a source a format
// would not reproduce: no \begin{document} at the start of a line, an
// earlier \begin...document on a line (a comment, say) or \endofdump, each of
// which would make mylatexformat stop somewhere else than the build did.
func splitPreamble(source string) (pre string, ok bool) {
	i := strings.Index(source, `\begin{document}`)
	if i < 0 {
		return "", false
	}
	start := strings.LastIndexByte(source[:i], '\n') + 1
	pre = source[:start]
	if strings.TrimLeft(source[start:i], " \t") != "" || strings.TrimSpace(pre) == "" ||
		strings.Contains(pre, "endofdump") || beginDocumentRE.MatchString(pre) {
		return "", false
	}
	return pre, true
}

// seenPreamble is what the cache remembers of a preamble's compiles.
type seenPreamble struct {
	count  int
	took   time.Duration // the last plain compile
	failed bool          // its build failed: compile it plain
}

// formatCache keeps dumped formats, one per distinct preamble, under a size
// cap, least recently used first out (by mtime; a use touches the file). A
// file appears by rename, so nobody reads a half-written one.
type formatCache struct {
	dir      string
	limit    int64  // bytes of formats kept
	identity string // the compiler and its base format, part of every key
	builds   atomic.Int64

	mu       sync.Mutex
	seen     map[string]*seenPreamble
	building map[string]bool
}

// newFormatCache returns the cache of the compiler's formats under root, or
// nil when formats cannot be made: a compiler other than pdflatex, or no
// mylatexformat.ltx or pdflatex.fmt in the TeX trees.
func newFormatCache(root string, limit int64, compiler, envPath string) (*formatCache, error) {
	if filepath.Base(compiler) != "pdflatex" {
		return nil, nil
	}
	identity := []string{formatVersion}
	for _, name := range []string{"pdflatex.fmt", "mylatexformat.ltx"} {
		cmd := exec.Command(filepath.Join(filepath.Dir(compiler), "kpsewhich"), "-engine=pdftex", name)
		cmd.Env = []string{"PATH=" + envPath}
		out, err := cmd.Output()
		if err != nil {
			return nil, nil
		}
		identity = append(identity, fileIdentity(strings.TrimSpace(string(out))))
	}
	identity = append(identity, fileIdentity(compiler))
	dir := filepath.Join(root, formatDirName)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("latex: create %s: %w", dir, err)
	}
	if err := checkOwnDir(dir); err != nil {
		return nil, err
	}
	return &formatCache{dir: dir, limit: limit, identity: strings.Join(identity, "\x00"),
		seen: map[string]*seenPreamble{}, building: map[string]bool{}}, nil
}

// fileIdentity names a file's version: its resolved path, size and mtime. A
// TeX Live update rewrites pdflatex.fmt, which retires every format.
func fileIdentity(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	fi, err := os.Stat(path)
	if err != nil {
		return path
	}
	return fmt.Sprintf("%s %d %d", path, fi.Size(), fi.ModTime().UnixNano())
}

// key is the name of pre's format: a hash of the compiler's identity and the
// preamble's bytes.
func (f *formatCache) key(pre string) string {
	sum := sha256.Sum256([]byte(f.identity + "\x00" + pre))
	return hex.EncodeToString(sum[:])
}

func (f *formatCache) path(key string) string { return filepath.Join(f.dir, key+".fmt") }

// linkInto hard-links key's format into dir and returns the link, or ""
// when there is none. The link keeps the file for this compile even if the
// cache evicts it meanwhile. A use makes the format the most recent.
func (f *formatCache) linkInto(key, dir string) string {
	link := filepath.Join(dir, "format.fmt")
	if err := os.Link(f.path(key), link); err != nil {
		return ""
	}
	now := time.Now()
	_ = os.Chtimes(link, now, now)
	return link
}

// claim counts a compile of key's preamble and reports whether this compile
// is to build its format: the buildAfter-th compile or a later one, when no
// build of it runs, none failed, and its last plain compile took under a
// third of timeout (so the build and a compile fit in one).
func (f *formatCache) claim(key string, timeout time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.seen[key]
	if s == nil {
		if len(f.seen) >= maxSeen {
			clear(f.seen)
		}
		s = &seenPreamble{}
		f.seen[key] = s
	}
	s.count++
	if s.count < buildAfter || s.failed || f.building[key] || s.took == 0 || s.took*3 > timeout {
		return false
	}
	f.building[key] = true
	return true
}

// plain records how long a plain compile of key's preamble took.
func (f *formatCache) plain(key string, took time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.seen[key]; s != nil {
		s.took = took
	}
}

// finish ends key's build: built, when not "", is the dumped format, moved
// into the cache; otherwise the build failed and the preamble compiles plain
// from now on. The cache is then trimmed to its limit.
func (f *formatCache) finish(key, built string) {
	ok := built != "" && os.Rename(built, f.path(key)) == nil
	f.mu.Lock()
	delete(f.building, key)
	if s := f.seen[key]; s != nil && !ok {
		s.failed = true
	}
	f.mu.Unlock()
	if ok {
		f.builds.Add(1)
		f.trim()
	}
}

// trim removes the least recently used formats until they fit the limit.
func (f *formatCache) trim() {
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return
	}
	type format struct {
		path string
		size int64
		used time.Time
	}
	var all []format
	var total int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || !strings.HasSuffix(e.Name(), ".fmt") {
			continue
		}
		all = append(all, format{filepath.Join(f.dir, e.Name()), fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	slices.SortFunc(all, func(a, b format) int { return a.used.Compare(b.used) })
	for _, fm := range all {
		if total <= f.limit {
			return
		}
		if os.Remove(fm.path) == nil {
			total -= fm.size
		}
	}
}

// prepareFormat returns the format a compile of source in dir loads, hard-
// linked into dir, or "" to compile plain: no cache, a source whose preamble
// a format would not reproduce, or none built yet. The buildAfter-th compile
// of a preamble builds its format (in the jail, like a compile, by
// deadline); one build of a preamble runs at a time, and compiles meanwhile
// go plain. A failed build only means plain compiles.
func (c *Compiler) prepareFormat(ctx context.Context, dir, source string, deadline time.Time) (format, key string) {
	f := c.formats
	if f == nil {
		return "", ""
	}
	pre, ok := splitPreamble(source)
	if !ok {
		return "", ""
	}
	key = f.key(pre)
	if link := f.linkInto(key, dir); link != "" {
		return link, key
	}
	if !f.claim(key, c.cfg.Timeout) {
		return "", key
	}
	built, err := c.buildFormat(ctx, dir, pre, deadline)
	if err != nil && ctx.Err() != nil {
		f.mu.Lock()
		delete(f.building, key)
		f.mu.Unlock()
		return "", key
	}
	f.finish(key, built)
	return f.linkInto(key, dir), key
}

// buildFormat dumps pre's format in the jail, from pre alone (the document's
// body is not in that jail), under the limits of a compile, and returns the
// file, or "" when the build failed: an error, a kill, the deadline, a read
// outside the work dir and the TeX trees, or a file written besides the
// format, its log and the PDF (a filecontents a compile from the format would
// miss).
func (c *Compiler) buildFormat(ctx context.Context, dir, pre string, deadline time.Time) (string, error) {
	build := filepath.Join(dir, "build")
	if err := os.Mkdir(build, 0o700); err != nil {
		return "", fmt.Errorf("latex: create build dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(build, buildSource), []byte(pre+"\\begin{document}\n"), 0o600); err != nil {
		return "", fmt.Errorf("latex: write preamble: %w", err)
	}
	res, outDir, err := c.run(ctx, build, deadline, jailRun{build: true})
	if err != nil || res.timedOut || res.signal != 0 || res.exitCode != 0 {
		return "", err
	}
	fls := filepath.Join(outDir, recorderName)
	violation, err := checkRecorder(fls, jailJobDir, c.texRoots)
	if err != nil || violation != "" {
		return "", err
	}
	wrote, err := recordedOutputs(fls)
	if err != nil || !slices.Contains(wrote, "main.fmt") {
		return "", err
	}
	for _, w := range wrote {
		if w != "main.fmt" && w != logName && w != pdfName { // a \pdfobj opens the PDF (tcolorbox)
			return "", nil
		}
	}
	built := filepath.Join(outDir, "main.fmt")
	fm, err := openOutput(built)
	if err != nil {
		return "", err
	}
	fm.Close()
	return built, nil
}
