// Package latex owns the sandboxed pdflatex compiler and the parser of its logs.
//
// A Compiler turns one LaTeX source into PDF bytes. Every Compile runs in a fresh
// temporary directory (removed afterwards) holding the source as main.tex, and runs
//
//	pdflatex -no-shell-escape -interaction=nonstopmode -halt-on-error
//	         -file-line-error -recorder main.tex
//
// with stdin from /dev/null and an environment of only PATH, openin_any=p,
// openout_any=p, shell_escape=f, max_print_line=1000 and a private HOME and
// TEXMFVAR inside the work directory. So the document can neither run programs
// nor read or write files outside the work directory and the TeX trees through
// \input, \openin or \openout. pdflatex runs in its own process group, killed as
// a whole when the timeout expires or the caller's context is cancelled; its
// console output is capped and each file it writes is limited in size (Linux).
//
// pdfTeX's own file primitives (\pdfobj file, \pdfmapfile) ignore openin_any, so
// after each run the -recorder file (main.fls) is checked: a document that opened
// any file outside the work directory and the TeX trees reported by kpsewhich
// gets an ErrSandbox error and neither its PDF nor its log is returned. This is
// defence in depth, not a jail: run sheetd where pdflatex can read no secrets.
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
