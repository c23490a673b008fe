package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// Insight sources, as stored in matches.insight_source.
const (
	SourceAI       = "ai"
	SourceFallback = "fallback"
)

// InsightWriter turns staged matches into insight texts. It is the seam for
// the AI writer: an implementation returns one insight per pending match and
// falls back to FallbackWriter for any it cannot write, so matching never
// waits on it longer than the activity's budget.
type InsightWriter interface {
	WriteInsights(ctx context.Context, pending []store.PendingInsight) ([]store.Insight, error)
}

// FallbackWriter writes the deterministic insight built from the match's
// reasons. It needs no network and never fails on well-formed reasons.
type FallbackWriter struct{}

// WriteInsights implements InsightWriter.
func (FallbackWriter) WriteInsights(_ context.Context, pending []store.PendingInsight) ([]store.Insight, error) {
	out := make([]store.Insight, 0, len(pending))
	for _, p := range pending {
		text, err := FallbackInsight(p)
		if err != nil {
			return nil, err
		}
		out = append(out, store.Insight{UserID: p.UserID, Rank: p.Rank, Text: text, Source: SourceFallback})
	}
	return out, nil
}

// FallbackInsight is the deterministic insight for one staged match.
func FallbackInsight(p store.PendingInsight) (string, error) {
	var r matching.Reasons
	if err := json.Unmarshal(p.Reasons, &r); err != nil {
		return "", fmt.Errorf("decode reasons of %s → %s: %w", p.UserID, p.MatchedUserID, err)
	}
	name := p.MatchedUserName
	if name == "" {
		name = "This attendee"
	}
	return matching.FallbackInsight(name, r), nil
}

func isBatchNotFound(err error) bool { return errors.Is(err, store.ErrBatchNotFound) }
