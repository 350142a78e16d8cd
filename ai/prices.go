package ai

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	Input, Output float64
}

// Prices are the prices of models by name (LLM_PRICES). There are no built-in
// prices: a model without one costs 0.
type Prices map[string]Price

// ParsePrices reads LLM_PRICES: a comma list of model=input:output, each in US
// dollars per million tokens, e.g. "gpt-4o-mini=0.15:0.60,gpt-4o=2.50:10.00".
// An empty text is no prices. Bad syntax, a negative or non-finite price and a
// model given twice are an error naming the entry.
func ParsePrices(s string) (Prices, error) {
	p := Prices{}
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		model, rates, ok := strings.Cut(entry, "=")
		model = strings.TrimSpace(model)
		in, out, ok2 := strings.Cut(rates, ":")
		if !ok || !ok2 || model == "" {
			return nil, fmt.Errorf("LLM_PRICES entry %q: want model=input:output (US dollars per million tokens), e.g. gpt-4o-mini=0.15:0.60", entry)
		}
		if _, dup := p[model]; dup {
			return nil, fmt.Errorf("LLM_PRICES: model %q is given twice", model)
		}
		var price Price
		for _, f := range []struct {
			text string
			v    *float64
		}{{in, &price.Input}, {out, &price.Output}} {
			v, err := strconv.ParseFloat(strings.TrimSpace(f.text), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, fmt.Errorf("LLM_PRICES entry %q: %q is not a price (a number of US dollars per million tokens, 0 or more)", entry, f.text)
			}
			*f.v = v
		}
		p[model] = price
	}
	return p, nil
}

// Cost is what model charges for promptTokens in and completionTokens out, in
// US dollars; 0 for a model without a price.
func (p Prices) Cost(model string, promptTokens, completionTokens int64) float64 {
	price, ok := p[model]
	if !ok {
		return 0
	}
	return (float64(promptTokens)*price.Input + float64(completionTokens)*price.Output) / 1e6
}
