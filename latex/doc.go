// Package latex owns the sandboxed pdflatex compiler and the parser of its logs.
//
// A Compiler turns one LaTeX source into PDF bytes. Every Compile gets a fresh
// work directory, <TempDir>/sheetpipe-compile/<pid>-<n>/job-*, removed
// afterwards, and runs
//
//	pdflatex -no-shell-escape -interaction=nonstopmode -halt-on-error
//	         -file-line-error -recorder main.tex
//
// with stdin from /dev/null and an environment of only PATH, openin_any=p,
// openout_any=p, shell_escape=f, max_print_line=1000 and a private HOME and
// TEXMFVAR.
//
// With Sandbox "bwrap" (the default) it runs in a bubblewrap jail (jail.go):
// its own user (uid 65534), mount, PID (own /proc), network, IPC and UTS
// namespaces, a root with only the system binaries and libraries, the
// compiler's directory and the TeX trees read-only, a 64 MiB tmpfs /job as
// working directory, RLIMIT_FSIZE, RLIMIT_CPU and RLIMIT_CORE set by a fixed
// shell wrapper that copies main.pdf, main.log and main.fls to the one writable
// bind, /out, after pdflatex ended; --die-with-parent kills the jail when
// sheetd dies. New checks the jail once and fails with ErrNoSandbox when it
// cannot be set up. With Sandbox "none" pdflatex runs bare in the work
// directory, its process group killed at the timeout and its files capped.
//
// Each Compiler holds an flock on its work area's lock file while it lives;
// New removes the areas whose lock nobody holds (a crashed process's).
//
// pdfTeX's own file primitives (\pdfobj file, \pdfmapfile, \pdffiledump) and
// kpathsea's variable expansion ($SELFAUTOPARENT) get past openin_any, which is
// why the jail is what keeps files out of reach. After each run the -recorder
// file (main.fls) is still checked as a second line: a document that opened any
// file outside its work directory and the TeX trees reported by kpsewhich gets
// an ErrSandbox error and neither its PDF nor its log is returned.
//
// pdflatex runs once: worksheets need no second pass (no cross-references or
// tables of contents worth a second run), so unresolved references stay "??".
//
// A document that fails (an error, a timeout, a sandbox violation) yields a
// *LatexError with the first error, its source line and the truncated log; the
// fix stage sends those to the LLM. The line is where the mistake is, not only
// where TeX noticed it: the \usepackage of a missing package, the start of a
// runaway argument, the stray text before a list's first \item (see locate).
// A missing package, class, babel language or TikZ library is named plainly:
// `LaTeX package "x" is not installed (x.sty)` (see Missing, ParseMissing). Anything else (no temp dir, pdflatex gone,
// a cancelled context) is a plain wrapped error. The package touches no NATS
// subject, bucket or store.
package latex
