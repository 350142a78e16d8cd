package ai

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sheetpipe/sheetpipe/internal/fakellm"
)

func TestModelsFor(t *testing.T) {
	c, err := New(Config{Provider: ProviderOpenAI, APIKey: "k", Model: "a", StepModels: map[string]string{StepFix: "f"},
		Fallbacks: []string{"b", "a", "c"}, StepFallbacks: map[string][]string{StepFix: {"g"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ModelsFor(StepDesign); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("design models %v, want [a b c]", got)
	}
	if got := c.ModelsFor(StepFix); !slices.Equal(got, []string{"f", "g"}) {
		t.Errorf("fix models %v, want [f g]", got)
	}
	off, _ := New(Config{Fallbacks: []string{"b"}})
	if got := off.ModelsFor(StepDesign); !slices.Equal(got, []string{OfflineModel}) || off.Available() != nil {
		t.Errorf("offline models %v, available %v: want [offline], nil", got, off.Available())
	}
}

func TestFallbackConfigRejected(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown step":       {StepFallbacks: map[string][]string{"compile": {"b"}}},
		"blank model":        {Fallbacks: []string{" "}},
		"negative max wait":  {MaxWait: -1},
		"negative threshold": {BreakerThreshold: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestUnknownModelFallsBack: a 404 for the step's model asks the next model at
// once; Reply.Model is the one that answered.
func TestUnknownModelFallsBack(t *testing.T) {
	c, srv := newFakeClient(t, Config{Model: "gone", Fallbacks: []string{"here"}}, func(req fakellm.Request) fakellm.Reply {
		if req.Model == "gone" {
			return fakellm.Reply{Status: http.StatusNotFound, Content: "The model `gone` does not exist"}
		}
		return fakellm.Reply{Content: "an outline"}
	})
	reply, err := c.GenerateDesign(context.Background(), nil, "a worksheet")
	if err != nil || reply.Model != "here" || reply.Fallback != "gone: unknown model (404)" || reply.Text != "an outline" {
		t.Fatalf("reply %+v, %v: want here's answer after gone's 404", reply, err)
	}
	if calls := srv.Calls(); len(calls) != 2 || calls[0].Model != "gone" || calls[1].Model != "here" {
		t.Fatalf("calls %+v: want gone then here", calls)
	}
	// Without a fallback the 404 is a permanent failure, as before.
	c, _ = newFakeClient(t, Config{Model: "gone"}, fakellm.Script(fakellm.Reply{Status: http.StatusNotFound}))
	if _, err := c.GenerateDesign(context.Background(), nil, "a worksheet"); !errors.Is(err, ErrPermanent) {
		t.Fatalf("error %v: want permanent", err)
	}
}

// TestServerErrorsFallBackAfterARun: the first FailoverAfter-1 5xx answers of
// a model fail their calls; from the FailoverAfter-th in a row the call asks
// the fallback, and so does every later call that meets a 5xx.
func TestServerErrorsFallBackAfterARun(t *testing.T) {
	c, _ := newFakeClient(t, Config{Model: "flaky", Fallbacks: []string{"steady"}, BreakerThreshold: 100},
		func(req fakellm.Request) fakellm.Reply {
			if req.Model == "flaky" {
				return fakellm.Reply{Status: http.StatusBadGateway, Content: "upstream down"}
			}
			return fakellm.Reply{Content: "an outline"}
		})
	ctx := context.Background()
	for i := 1; i < FailoverAfter; i++ {
		if _, err := c.GenerateDesign(ctx, nil, "a worksheet"); !errors.Is(err, ErrTransient) {
			t.Fatalf("call %d: %v, want transient", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		reply, err := c.GenerateDesign(ctx, nil, "a worksheet")
		if err != nil || reply.Model != "steady" || !strings.HasPrefix(reply.Fallback, "flaky: ") || !strings.Contains(reply.Fallback, "server errors in a row (last 502)") {
			t.Fatalf("reply %+v, %v: want steady's answer after flaky's run of 5xx", reply, err)
		}
	}
}
