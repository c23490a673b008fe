// Package aiprice holds what a model's tokens cost, for the AI backfill's
// spend limit (AI_MAX_SPEND_USD_PER_EVENT): a table of USD prices per
// million input and output tokens, with built-in defaults for a few common
// OpenAI models that AI_PRICES extends or overrides.
package aiprice

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Price is what one million tokens of a model cost, in USD.
type Price struct {
	InputPerMillion  float64 // prompt tokens
	OutputPerMillion float64 // completion tokens
}

// Cost is what promptTokens and completionTokens cost at p, in USD.
func (p Price) Cost(promptTokens, completionTokens int) float64 {
	return (float64(promptTokens)*p.InputPerMillion + float64(completionTokens)*p.OutputPerMillion) / 1e6
}

// Table maps model names, exactly as OPENAI_MODEL names them, to prices.
type Table map[string]Price

// DefaultsAsOf is when the defaults were taken from OpenAI's public pricing
// page (https://openai.com/api/pricing/). Prices change: check them there
// and override them with AI_PRICES.
const DefaultsAsOf = "2025-08"

// Defaults are OpenAI's standard (not Batch API, not cached-input) prices
// of a few common models as of DefaultsAsOf.
func Defaults() Table {
	return Table{
		"gpt-4o-mini":  {InputPerMillion: 0.15, OutputPerMillion: 0.60},
		"gpt-4o":       {InputPerMillion: 2.50, OutputPerMillion: 10.00},
		"gpt-4.1":      {InputPerMillion: 2.00, OutputPerMillion: 8.00},
		"gpt-4.1-mini": {InputPerMillion: 0.40, OutputPerMillion: 1.60},
		"gpt-4.1-nano": {InputPerMillion: 0.10, OutputPerMillion: 0.40},
		"gpt-5":        {InputPerMillion: 1.25, OutputPerMillion: 10.00},
		"gpt-5-mini":   {InputPerMillion: 0.25, OutputPerMillion: 2.00},
		"gpt-5-nano":   {InputPerMillion: 0.05, OutputPerMillion: 0.40},
	}
}

// Parse reads AI_PRICES: comma-separated entries model=input/output, the
// USD prices per million input and output tokens, e.g.
// "gpt-4o-mini=0.15/0.60,my-llama=0/0". The result is Defaults with the
// entries added or replaced. An empty spec is Defaults.
func Parse(spec string) (Table, error) {
	t := Defaults()
	var errs []error
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		model, prices, ok := strings.Cut(entry, "=")
		model = strings.TrimSpace(model)
		in, out, ok2 := strings.Cut(prices, "/")
		if !ok || !ok2 || model == "" {
			errs = append(errs, fmt.Errorf("%q is not model=input/output (USD per 1M tokens, e.g. gpt-4o-mini=0.15/0.60)", entry))
			continue
		}
		inPrice, errIn := parsePrice(in)
		outPrice, errOut := parsePrice(out)
		if err := errors.Join(errIn, errOut); err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", entry, err))
			continue
		}
		t[model] = Price{InputPerMillion: inPrice, OutputPerMillion: outPrice}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func parsePrice(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || v != v || v > 1e6 {
		return 0, fmt.Errorf("price %q is not a number between 0 and 1000000", strings.TrimSpace(s))
	}
	return v, nil
}

// Lookup is model's price. Names match exactly: a dated snapshot
// ("gpt-4o-mini-2024-07-18") needs an entry of its own, since snapshots
// and variants of a model are not always priced alike.
func (t Table) Lookup(model string) (Price, bool) {
	p, ok := t[model]
	return p, ok
}

// Models are the table's model names, sorted, for messages.
func (t Table) Models() []string { return slices.Sorted(maps.Keys(t)) }
