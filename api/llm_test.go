package api_test

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

// Markers in a prompt pick how the scripted LLM treats every call of that job
// (package ai sends the job's whole conversation with each call).
const (
	// markSlow holds the design call until the client goes away.
	markSlow = "[slow]"
	// markRefuseOnce refuses the job's first design call (401), then answers.
	markRefuseOnce = "[refuse-once]"
	// revisedRequest starts the answer of every refine call; a job whose
	// conversation has one gets refinedLatex.
	revisedRequest = "Revised request:"
)

const goodLatex = `\documentclass{article}
\usepackage{amsmath}
\begin{document}
\section*{Fractions}
\begin{enumerate}
\item $\frac{1}{2} + \frac{1}{4} = \underline{\hspace{2cm}}$
\end{enumerate}
\end{document}
`

const refinedLatex = `\documentclass{article}
\begin{document}
\section*{Decimals}
\begin{enumerate}
\item $0.5 + 0.25 = \underline{\hspace{2cm}}$
\item $1.5 + 0.75 = \underline{\hspace{2cm}}$
\end{enumerate}
\end{document}
`

// editedLatex is what tests supply by hand.
const editedLatex = `\documentclass{article}
\begin{document}
\section*{Edited by hand}
Write your name: \underline{\hspace{4cm}}
\end{document}
`

// brokenLatex has an undefined control sequence on line 4.
const brokenLatex = `\documentclass{article}
\begin{document}
\section*{Fractions}
\notacommand{1/2}
\end{document}
`

// script is the scripted LLM shared by every job of a fixture.
type script struct {
	mu      sync.Mutex
	refused map[string]bool
}

func newScript() *script { return &script{refused: map[string]bool{}} }

func (s *script) handle(req fakellm.Request) fakellm.Reply {
	var all strings.Builder
	for _, m := range req.Messages {
		all.WriteString(m.Content + "\n")
	}
	conv := all.String()
	switch req.Step {
	case "design":
		switch {
		case strings.Contains(conv, markSlow):
			return fakellm.Reply{Delay: 10 * time.Minute, Content: "never sent"}
		case strings.Contains(conv, markRefuseOnce) && s.refuseFirst(req.LastUser()):
			return fakellm.Reply{Status: http.StatusUnauthorized, Content: "invalid api key"}
		}
		return fakellm.Reply{Content: "Outline: one section of exercises"}
	case "latex":
		if strings.Contains(conv, revisedRequest) {
			return fakellm.Reply{Content: refinedLatex}
		}
		return fakellm.Reply{Content: goodLatex}
	case "fix":
		return fakellm.Reply{Content: goodLatex}
	case "refine":
		return fakellm.Reply{Content: revisedRequest + " the same worksheet with decimals instead of fractions"}
	}
	return fakellm.Reply{Content: "a worksheet"}
}

// refuseFirst reports whether this is the first time the design request is seen.
func (s *script) refuseFirst(request string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.refused[request]
	s.refused[request] = true
	return first
}
