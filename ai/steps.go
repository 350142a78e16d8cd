package ai

import "context"

// LatexErrorInfo is a parsed compile error, as sent to the fix step.
type LatexErrorInfo struct {
	Message string // the error message, e.g. "Undefined control sequence."
	Snippet string // the log excerpt around the first error
	Line    int    // 1-based source line of the error; 0 if unknown
}

// GenerateDesign asks for a plain-text outline of the worksheet the user's
// prompt describes: sections, exercise types, counts and difficulty (step
// "design"). refs are finished documents the worksheet builds on; the message
// carries them after the request.
func (c *Client) GenerateDesign(ctx context.Context, history []Turn, prompt string, refs ...Reference) (Reply, error) {
	return c.call(ctx, StepDesign, history, designMessage(prompt)+referencesMessage(refs), Clean,
		func() string { return offlineDesign(prompt) })
}

// GenerateLatex asks for a complete LaTeX document following design; Reply.Text
// is cleaned to run from \documentclass to \end{document} (step "latex"). refs
// are finished documents the worksheet builds on, as for GenerateDesign.
func (c *Client) GenerateLatex(ctx context.Context, history []Turn, design string, refs ...Reference) (Reply, error) {
	return c.call(ctx, StepLatex, history, latexMessage(design)+referencesMessage(refs), Clean,
		func() string { return offlineLatex(requestFor(design, history)) })
}

// FixLatex asks for a corrected version of latex, which failed to compile with
// e. The message carries e's message, line and snippet, the numbered source
// lines around e.Line and the full document; Reply.Text is cleaned like
// GenerateLatex's (step "fix").
func (c *Client) FixLatex(ctx context.Context, history []Turn, latex string, e LatexErrorInfo) (Reply, error) {
	return c.call(ctx, StepFix, history, fixMessage(latex, e, c.cfg.TeX), Clean,
		func() string { return offlineLatex(latestRequest(history)) })
}

// RefinePrompt asks for a revised, self-contained worksheet request that
// incorporates the user's instruction, to be designed again (step "refine").
func (c *Client) RefinePrompt(ctx context.Context, history []Turn, instruction string) (Reply, error) {
	return c.call(ctx, StepRefine, history, refineMessage(instruction), Clean,
		func() string { return offlineRefine(latestRequest(history), instruction) })
}

// GenerateDescription asks for a one- or two-sentence plain-text description of
// the worksheet in latex (step "meta").
func (c *Client) GenerateDescription(ctx context.Context, history []Turn, latex string) (Reply, error) {
	return c.call(ctx, StepMeta, history, descriptionMessage(latex), cleanDescription,
		func() string { return offlineDescription(latestRequest(history)) })
}

// GenerateTags asks for 3 to 8 short lowercase tags for the worksheet in latex
// and returns them parsed from the comma- or newline-separated answer, deduped
// and capped at 8; Reply.Text is the tags joined by ", " (step "meta").
func (c *Client) GenerateTags(ctx context.Context, history []Turn, latex string) ([]string, Reply, error) {
	reply, err := c.call(ctx, StepMeta, history, tagsMessage(latex), cleanTags,
		func() string { return offlineTags(latestRequest(history)) })
	if err != nil {
		return nil, Reply{}, err
	}
	return parseTags(reply.Text), reply, nil
}
