package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/sheetpipe/sheetpipe/ai"
)

// scriptedLLM is the benchmark's LLM: it implements what package consumers
// asks of one and answers after a fixed delay (zero: at once) with a fixed
// design and fixed LaTeX, so a run measures the pipeline, not a model. The
// LaTeX carries a comment derived from the design, and the design names the
// request: jobs with different prompts get different LaTeX (nothing a content
// cache could skip), jobs with the same prompt identical LaTeX.
type scriptedLLM struct {
	delay  time.Duration
	design string
	latex  string
}

func (l *scriptedLLM) Provider() string         { return "sheetbench" }
func (l *scriptedLLM) ModelFor(_ string) string { return "sheetbench-scripted" }

func (l *scriptedLLM) GenerateDesign(ctx context.Context, h []ai.Turn, prompt string, _ ...ai.Reference) (ai.Reply, error) {
	return l.answer(ctx, h, prompt, l.design+"\nRequest: "+prompt)
}

func (l *scriptedLLM) GenerateLatex(ctx context.Context, h []ai.Turn, design string, _ ...ai.Reference) (ai.Reply, error) {
	sum := sha256.Sum256([]byte(design))
	// Inside the document: ai.Clean keeps only \documentclass ... \end{document}.
	doc := strings.Replace(l.latex, `\begin{document}`, `\begin{document}`+"\n% design "+hex.EncodeToString(sum[:8]), 1)
	return l.answer(ctx, h, design, doc)
}

func (l *scriptedLLM) FixLatex(ctx context.Context, h []ai.Turn, latex string, _ ai.LatexErrorInfo) (ai.Reply, error) {
	return l.answer(ctx, h, latex, latex)
}

func (l *scriptedLLM) RefinePrompt(ctx context.Context, h []ai.Turn, instruction string) (ai.Reply, error) {
	return l.answer(ctx, h, instruction, instruction)
}

func (l *scriptedLLM) GenerateDescription(ctx context.Context, h []ai.Turn, latex string) (ai.Reply, error) {
	return l.answer(ctx, h, "describe", "A worksheet.")
}

func (l *scriptedLLM) GenerateTags(ctx context.Context, h []ai.Turn, latex string) ([]string, ai.Reply, error) {
	r, err := l.answer(ctx, h, "tags", "worksheet, benchmark")
	return []string{"worksheet", "benchmark"}, r, err
}

// answer waits the delay and returns text as ai.Client would: the turns to
// record (the system turn first in a new conversation) and the cleaned text.
func (l *scriptedLLM) answer(ctx context.Context, history []ai.Turn, user, text string) (ai.Reply, error) {
	if l.delay > 0 {
		t := time.NewTimer(l.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ai.Reply{}, fmt.Errorf("scripted llm: %w", ctx.Err())
		case <-t.C:
		}
	}
	reply := ai.Reply{Text: ai.Clean(text), Model: "sheetbench-scripted"}
	if len(history) == 0 {
		reply.Turns = append(reply.Turns, ai.Turn{Role: ai.RoleSystem, Content: ai.SystemPrompt(ai.TeX{})})
	}
	reply.Turns = append(reply.Turns, ai.Turn{Role: ai.RoleUser, Content: user}, ai.Turn{Role: ai.RoleAssistant, Content: text})
	return reply, nil
}

// offlineWorksheet is the design and LaTeX the offline provider writes for a
// typical prompt: what the scripted LLM answers and the real compile scenario
// compiles.
func offlineWorksheet(ctx context.Context) (design, latex string, err error) {
	c, err := ai.New(ai.Config{Provider: ai.ProviderOffline})
	if err != nil {
		return "", "", err
	}
	d, err := c.GenerateDesign(ctx, nil, typicalPrompt)
	if err != nil {
		return "", "", fmt.Errorf("offline design: %w", err)
	}
	l, err := c.GenerateLatex(ctx, d.Turns, d.Text)
	if err != nil {
		return "", "", fmt.Errorf("offline latex: %w", err)
	}
	return d.Text, l.Text, nil
}

// typicalPrompt is the request every benchmark job asks for (with a number
// appended to keep jobs distinct).
const typicalPrompt = "A fractions worksheet for grade 5 with 12 exercises and an answer key"

// fixedCompiler is the benchmark-only compiler of the overhead and concurrency
// scenarios: it returns the same small valid PDF for any source without running
// pdflatex, so those scenarios measure the pipeline's own cost.
type fixedCompiler struct{}

func (fixedCompiler) Compile(ctx context.Context, source string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !strings.Contains(source, `\end{document}`) {
		return nil, fmt.Errorf("fixed compiler: source has no \\end{document}")
	}
	return []byte(tinyPDF), nil
}

// tinyPDF is a one-page empty PDF.
const tinyPDF = "%PDF-1.4\n" +
	"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" +
	"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n" +
	"trailer<</Root 1 0 R>>\n%%EOF\n"
