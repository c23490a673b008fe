package insight_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
)

// TestBatchRoundTrip: a batch of three pairs through the fake's Batch API;
// its answers are validated as WritePair's are: a good one accepted, one
// that does not name the other person refused, a failed line an error.
func TestBatchRoundTrip(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		switch call {
		case 1:
			r := fakeopenai.Answer(forAlice, forBob)
			r.PromptTokens, r.CompletionTokens = 300, 50
			return r
		case 2:
			return fakeopenai.Answer(forAlice, "You two should talk about robotics and pilot sites at this event.")
		}
		return fakeopenai.Error(http.StatusInternalServerError, "boom")
	})
	c := newClient(t, srv, nil)
	ctx := context.Background()
	id, err := c.SubmitBatch(ctx, []insight.BatchLine{{CustomID: "p1", Pair: pair}, {CustomID: "p2", Pair: pair}, {CustomID: "p3", Pair: pair}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.RetrieveBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Done || st.Completed != 2 || st.Failed != 1 || st.OutputFileID == "" {
		t.Fatalf("batch %+v", st)
	}
	lines, err := c.BatchOutput(ctx, st.OutputFileID)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("%d output lines", len(lines))
	}
	res, err := c.CheckBatchAnswer(lines[0], pair)
	if err != nil || res.ForFirst != forAlice || res.ForSecond != forBob || res.PromptTokens != 300 || res.CompletionTokens != 50 {
		t.Errorf("line p1: %+v %v", res, err)
	}
	if p, c := lines[0].Usage(); p != 300 || c != 50 {
		t.Errorf("usage %d+%d", p, c)
	}
	if _, err := c.CheckBatchAnswer(lines[1], pair); insight.Classify(err) != "invalid_name" {
		t.Errorf("line p2: %v, want refused for not naming Alice", err)
	}
	failed, err := c.BatchOutput(ctx, st.ErrorFileID)
	if err != nil || len(failed) != 1 {
		t.Fatalf("error file: %v %v", failed, err)
	}
	if _, err := c.CheckBatchAnswer(failed[0], pair); insight.Classify(err) != "server_error" {
		t.Errorf("failed line: %v", err)
	}

	var perm *insight.PermanentError
	if _, err := c.RetrieveBatch(ctx, "batch_nope"); !errors.As(err, &perm) {
		t.Errorf("unknown batch: %v, want a permanent error", err)
	}
}
