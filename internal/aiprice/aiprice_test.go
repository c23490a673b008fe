package aiprice

import (
	"math"
	"testing"
)

func TestParseAddsAndOverridesTheDefaults(t *testing.T) {
	got, err := Parse(" gpt-4o-mini=0.2/0.8 , my-llama=0/0,gpt-x=1.5/6")
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]Price{
		"gpt-4o-mini": {0.2, 0.8},
		"my-llama":    {0, 0},
		"gpt-x":       {1.5, 6},
		"gpt-4o":      Defaults()["gpt-4o"],
	} {
		if p, ok := got.Lookup(model); !ok || p != want {
			t.Errorf("%s: %+v %v, want %+v", model, p, ok, want)
		}
	}
	if _, ok := got.Lookup("gpt-4o-mini-2024-07-18"); ok {
		t.Error("a dated snapshot was priced without an entry of its own")
	}
}

func TestParseEmptyIsTheDefaults(t *testing.T) {
	got, err := Parse("")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(Defaults()) {
		t.Errorf("%d prices, want the %d defaults", len(got), len(Defaults()))
	}
}

func TestParseRefusesMalformedEntries(t *testing.T) {
	for _, spec := range []string{"gpt-4o", "gpt-4o=1", "=1/2", "gpt-4o=a/2", "gpt-4o=1/-2", "gpt-4o=1/NaN", "x=1/2,y"} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) accepted", spec)
		}
	}
}

func TestCost(t *testing.T) {
	p := Price{InputPerMillion: 0.15, OutputPerMillion: 0.60}
	// 1M prompt tokens and half a million completion tokens.
	if got := p.Cost(1_000_000, 500_000); math.Abs(got-0.45) > 1e-12 {
		t.Errorf("cost %v, want 0.45", got)
	}
	if got := p.Cost(0, 0); got != 0 {
		t.Errorf("cost of nothing %v", got)
	}
}
