package ai

import (
	"math"
	"testing"
)

func TestParsePrices(t *testing.T) {
	p, err := ParsePrices(" gpt-4o-mini=0.15:0.60 , gpt-4o=2.50:10.00")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Cost("gpt-4o-mini", 1_000_000, 2_000_000); math.Abs(got-1.35) > 1e-12 {
		t.Errorf("gpt-4o-mini: 1M in, 2M out cost %v, want 1.35", got)
	}
	if got := p.Cost("gpt-4o", 1000, 100); math.Abs(got-0.0035) > 1e-12 {
		t.Errorf("gpt-4o: 1000 in, 100 out cost %v, want 0.0035", got)
	}
	if got := p.Cost("unpriced", 1000, 1000); got != 0 {
		t.Errorf("a model without a price costs %v, want 0", got)
	}
	if p, err := ParsePrices(""); err != nil || len(p) != 0 {
		t.Errorf("empty LLM_PRICES: %v, %v", p, err)
	}
	for _, bad := range []string{"gpt-4o", "gpt-4o=1", "=1:2", "m=1:x", "m=NaN:1", "m=1:+Inf", "m=-1:1", "m=1:2,", "m=1:2,m=1:2"} {
		if _, err := ParsePrices(bad); err == nil {
			t.Errorf("LLM_PRICES=%q accepted", bad)
		}
	}
}
