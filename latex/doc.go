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
// TEXMFVAR. It runs pdflatex again while the run succeeded and its log asks
// for a rerun (LaTeX's "Label(s) may have changed", lastpage's and exam's
// "Rerun" warnings), at most three passes in all in the same work directory
// (main.aux carries over), Config.Timeout bounding them all; every pass's
// recorder file is checked.
//
// With Sandbox "bwrap" (the default) it runs in a bubblewrap jail (jail.go):
// its own user (uid 65534), mount, PID (own /proc), network, IPC and UTS
// namespaces, a root with only the system binaries and libraries, the
// compiler's directory and the TeX trees read-only, a 64 MiB tmpfs /job as
// working directory, RLIMIT_FSIZE, RLIMIT_CPU and RLIMIT_CORE set by a fixed
// shell wrapper that runs the passes and copies main.pdf, main.log and each
// pass's main.fls (as main<N>.fls) to the one writable bind, /out;
// --die-with-parent kills the jail when sheetd dies. New checks the jail once
// and fails with ErrNoSandbox when it cannot be set up. With Sandbox "none"
// pdflatex runs bare in the work directory, its process group killed at the
// timeout and its files capped.
//
// In the jail and with pdflatex, the preamble (the lines before the one that
// starts with \begin{document}) of a source compiled a second time gets a
// dumped format (format.go): mylatexformat run with pdflatex -ini in a jail
// of its own that holds only the preamble, under the same limits; kept in
// <TempDir>/sheetpipe-compile/fmt/<sha256>.fmt, keyed by the preamble's bytes
// with the compiler, its base format and the build's version, at most
// Config.FormatCacheSize bytes (least recently used out first); bound
// read-only into later compiles of that exact preamble, which load it with
// -fmt instead of reading the preamble's packages. A build that fails, reads
// outside or writes files besides the format only means plain compiles.
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
