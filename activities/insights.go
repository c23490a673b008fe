package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// Insight sources, as stored in matches.insight_source.
const (
	SourceAI       = "ai"
	SourceFallback = "fallback"
)

// Fallback reasons, as counted in InsightResult.
const (
	FallbackNoAI = "no_ai" // no OPENAI_API_KEY configured
)

// InsightWriter turns matches into insight texts. WriteInsights serves a
// batch: one insight per pending match, from what costs no model call (the
// cache), the deterministic fallback for the rest, so matching never waits
// for the model. Backfill serves the event's backfill, which upgrades the
// fallbacks afterwards. Activities with no InsightWriter apply the staged
// fallbacks in SQL and run no backfill.
type InsightWriter interface {
	WriteInsights(ctx context.Context, pending []store.PendingInsight) ([]store.Insight, InsightResult, error)
	Backfill(ctx context.Context, pending []store.PendingInsight, maxCalls int) (BackfillAnswers, error)
}

// fallbackFor is the deterministic insight of a pending match: the one
// scoring staged, or one built from its reasons.
func fallbackFor(p store.PendingInsight) (store.Insight, error) {
	text := p.Fallback
	if text == "" {
		var err error
		if text, err = FallbackInsight(p); err != nil {
			return store.Insight{}, err
		}
	}
	return store.Insight{UserID: p.UserID, Rank: p.Rank, Text: text, Source: SourceFallback}, nil
}

// ReasonCount counts fallbacks of one reason. A sorted slice rather than a
// map, because it travels into workflow state, where maps are not ranged.
type ReasonCount struct {
	Reason string
	Count  int
}

func (r *InsightResult) addFallbacks(reason string, n int) {
	r.FallbackReasons = AddReasonCount(r.FallbackReasons, reason, n)
}

// AddReasonCount adds n to reason's count, keeping the slice sorted.
func AddReasonCount(counts []ReasonCount, reason string, n int) []ReasonCount {
	if n == 0 {
		return counts
	}
	for i := range counts {
		if counts[i].Reason == reason {
			counts[i].Count += n
			return counts
		}
	}
	counts = append(counts, ReasonCount{Reason: reason, Count: n})
	sort.Slice(counts, func(i, j int) bool { return counts[i].Reason < counts[j].Reason })
	return counts
}

// FallbackInsight is the deterministic insight for one staged match.
func FallbackInsight(p store.PendingInsight) (string, error) {
	var r matching.Reasons
	if err := json.Unmarshal(p.Reasons, &r); err != nil {
		return "", fmt.Errorf("decode reasons of %s → %s: %w", p.UserID, p.MatchedUserID, err)
	}
	return matching.FallbackInsight(fallbackName(p.MatchedUserName), r), nil
}

func fallbackName(name string) string {
	if name == "" {
		return "This attendee"
	}
	return name
}

func isBatchNotFound(err error) bool { return errors.Is(err, store.ErrBatchNotFound) }
