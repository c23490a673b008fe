package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/store"
)

// TestAIBatchIsCollectedOnce: an event has one open batch; finishing it
// counts its usage once, and a retried finish gets the first counts back.
func TestAIBatchIsCollectedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st, ctx := e.st, context.Background()
	event := ev(1)
	e.Exec(`INSERT INTO events (id, code, name) VALUES ($1, 'batch', 'Batch')`, event)
	if _, ok, err := st.OpenAIBatch(ctx, event); err != nil || ok {
		t.Fatalf("open batch before any: %v %v", ok, err)
	}
	listsUpTo := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
	if err := st.RecordAIBatch(ctx, event, store.AIBatch{BatchID: "batch_a", Requests: 10, ListsUpTo: listsUpTo}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAIBatch(ctx, event, store.AIBatch{BatchID: "batch_a", Requests: 10, ListsUpTo: listsUpTo}); err != nil {
		t.Fatalf("recorded again: %v", err)
	}
	if err := st.RecordAIBatch(ctx, event, store.AIBatch{BatchID: "batch_b", Requests: 5, ListsUpTo: time.Now()}); err == nil {
		t.Error("a second open batch was recorded")
	}
	b, ok, err := st.OpenAIBatch(ctx, event)
	if err != nil || !ok || b.BatchID != "batch_a" || b.Requests != 10 || !b.ListsUpTo.Equal(listsUpTo) {
		t.Fatalf("open batch %+v %v %v", b, ok, err)
	}
	counts := store.AIBatchCounts{Answered: 7, Refused: 1, Failed: 1, Stale: 1}
	usage := store.BackfillUsage{Calls: 9, PromptTokens: 900, CompletionTokens: 90}
	first, got, err := st.FinishAIBatch(ctx, event, "batch_a", counts, usage)
	if err != nil || !first || got != counts {
		t.Fatalf("finish: %v %+v %v", first, got, err)
	}
	first, got, err = st.FinishAIBatch(ctx, event, "batch_a", store.AIBatchCounts{Answered: 99}, usage)
	if err != nil || first || got != counts {
		t.Fatalf("finish again: %v %+v %v, want the first counts", first, got, err)
	}
	p, err := st.BackfillProgress(ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	if p.Calls != 9 || p.PromptTokens != 900 || p.CompletionTokens != 90 {
		t.Errorf("usage counted %+v, want once", p)
	}
	if _, ok, err := st.OpenAIBatch(ctx, event); err != nil || ok {
		t.Errorf("open batch after collecting: %v %v", ok, err)
	}
	if err := st.RecordAIBatch(ctx, event, store.AIBatch{BatchID: "batch_b", Requests: 5, ListsUpTo: time.Now()}); err != nil {
		t.Errorf("the next batch: %v", err)
	}
}

// TestAIBatchOfADeletedEvent: collecting the batch of an event deleted
// meanwhile counts nothing and fails nothing.
func TestAIBatchOfADeletedEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st, ctx := e.st, context.Background()
	event := ev(2)
	e.Exec(`INSERT INTO events (id, code, name) VALUES ($1, 'gone', 'Gone')`, event)
	if err := st.RecordAIBatch(ctx, event, store.AIBatch{BatchID: "batch_a", Requests: 10, ListsUpTo: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.Exec(`DELETE FROM events WHERE id = $1`, event)
	first, _, err := st.FinishAIBatch(ctx, event, "batch_a", store.AIBatchCounts{Answered: 1}, store.BackfillUsage{Calls: 1})
	if err != nil || first {
		t.Fatalf("finish: %v %v, want nothing counted and no error", first, err)
	}
}
