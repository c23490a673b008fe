package fakeopenai_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/eventmatch/matchmaker/internal/fakeopenai"
)

// TestBatchAPI drives the fake's /v1/files and /v1/batches with go-openai,
// as the insight client does: upload, create, retrieve until completed
// (after the delay, through an injected 500), download both files. Every
// third line fails, as the behaviour says.
func TestBatchAPI(t *testing.T) {
	srv := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		if call%3 == 0 {
			return fakeopenai.Error(http.StatusInternalServerError, "boom")
		}
		return fakeopenai.Echo(call, req)
	})
	srv.SetBatchDelay(300 * time.Millisecond)
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = srv.URL()
	c := openai.NewClientWithConfig(cfg)
	ctx := context.Background()

	var chat openai.ChatCompletionRequest
	if err := json.Unmarshal([]byte(chatBody), &chat); err != nil {
		t.Fatal(err)
	}
	upload := openai.UploadBatchFileRequest{FileName: "in.jsonl"}
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		upload.AddChatCompletion(id, chat)
	}
	file, err := c.UploadBatchFile(ctx, upload)
	if err != nil {
		t.Fatal(err)
	}
	if file.Purpose != "batch" || file.ID == "" {
		t.Fatalf("uploaded file %+v", file)
	}
	if _, err := c.CreateBatch(ctx, openai.CreateBatchRequest{InputFileID: "file-nope", Endpoint: openai.BatchEndpointChatCompletions}); err == nil {
		t.Error("a batch of a file that does not exist was created")
	}
	b, err := c.CreateBatch(ctx, openai.CreateBatchRequest{InputFileID: file.ID, Endpoint: openai.BatchEndpointChatCompletions})
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != "in_progress" || b.RequestCounts.Total != 6 || srv.Calls() != 0 {
		t.Fatalf("new batch %+v, %d calls answered", b.Batch, srv.Calls())
	}
	got, err := c.RetrieveBatch(ctx, b.ID)
	if err != nil || got.Status != "in_progress" {
		t.Fatalf("retrieved before the delay: %+v %v", got.Batch, err)
	}

	time.Sleep(300 * time.Millisecond)
	srv.FailBatchRetrievals(1)
	if _, err := c.RetrieveBatch(ctx, b.ID); err == nil {
		t.Fatal("the injected retrieval failure did not fail")
	}
	got, err = c.RetrieveBatch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "completed" || got.OutputFileID == nil || got.ErrorFileID == nil ||
		got.RequestCounts != (openai.BatchRequestCounts{Total: 6, Completed: 4, Failed: 2}) {
		t.Fatalf("completed batch %+v", got.Batch)
	}
	if srv.BatchLines() != 6 || srv.Batches() != 1 {
		t.Errorf("%d batch lines answered in %d batches", srv.BatchLines(), srv.Batches())
	}

	type outLine struct {
		CustomID string `json:"custom_id"`
		Response struct {
			StatusCode int                           `json:"status_code"`
			Body       openai.ChatCompletionResponse `json:"body"`
		} `json:"response"`
	}
	read := func(fileID string) []outLine {
		t.Helper()
		raw, err := c.GetFileContent(ctx, fileID)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var lines []outLine
		sc := bufio.NewScanner(raw)
		for sc.Scan() {
			var l outLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("output line %q: %v", sc.Text(), err)
			}
			lines = append(lines, l)
		}
		return lines
	}
	out := read(*got.OutputFileID)
	want := []string{"a", "b", "d", "e"}
	if len(out) != len(want) {
		t.Fatalf("%d output lines, want %d", len(out), len(want))
	}
	for i, l := range out {
		if l.CustomID != want[i] || l.Response.StatusCode != 200 || len(l.Response.Body.Choices) != 1 ||
			l.Response.Body.Usage.PromptTokens == 0 {
			t.Errorf("output line %d: %+v", i, l)
		}
	}
	failed := read(*got.ErrorFileID)
	if len(failed) != 2 || failed[0].CustomID != "c" || failed[1].Response.StatusCode != 500 {
		t.Errorf("error lines %+v", failed)
	}
	// Completed stays completed: its lines are answered once.
	if again, err := c.RetrieveBatch(ctx, b.ID); err != nil || again.Status != "completed" || srv.BatchLines() != 6 {
		t.Errorf("retrieved again: %+v %v, %d lines answered", again.Batch, err, srv.BatchLines())
	}
}

// TestBatchOutcomes: a batch can be made to expire (half its lines
// answered, the rest in the error file) or fail (nothing answered).
func TestBatchOutcomes(t *testing.T) {
	srv := fakeopenai.New(t, nil)
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = srv.URL()
	c := openai.NewClientWithConfig(cfg)
	ctx := context.Background()
	var chat openai.ChatCompletionRequest
	if err := json.Unmarshal([]byte(chatBody), &chat); err != nil {
		t.Fatal(err)
	}
	run := func() openai.Batch {
		t.Helper()
		upload := openai.UploadBatchFileRequest{}
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			upload.AddChatCompletion(id, chat)
		}
		b, err := c.CreateBatchWithUploadFile(ctx, openai.CreateBatchWithUploadFileRequest{
			Endpoint: openai.BatchEndpointChatCompletions, UploadBatchFileRequest: upload})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.RetrieveBatch(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Batch
	}
	srv.SetBatchOutcome(fakeopenai.BatchExpired)
	b := run()
	if b.Status != "expired" || b.ExpiredAt == nil || b.OutputFileID == nil || b.ErrorFileID == nil ||
		b.RequestCounts != (openai.BatchRequestCounts{Total: 5, Completed: 2, Failed: 3}) {
		t.Errorf("expired batch %+v", b)
	}
	srv.SetBatchOutcome(fakeopenai.BatchFailed)
	b = run()
	if b.Status != "failed" || b.FailedAt == nil || b.OutputFileID != nil ||
		b.RequestCounts != (openai.BatchRequestCounts{Total: 5, Completed: 0, Failed: 5}) {
		t.Errorf("failed batch %+v", b)
	}
	if srv.BatchLines() != 2 {
		t.Errorf("%d lines answered, want the expired batch's 2", srv.BatchLines())
	}
}
