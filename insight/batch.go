package insight

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	openai "github.com/sashabaranov/go-openai"
)

// The provider's Batch API: the same requests as WritePair's, sent as
// lines of a JSONL file (/v1/files, purpose "batch") that one batch
// (/v1/batches, completion window 24h) answers within a day at a lower
// price. The answers are validated exactly as WritePair's are
// (CheckBatchAnswer). The caller polls the batch (RetrieveBatch) and keeps
// its ID durably: a batch created twice is paid twice.

// BatchLine is one pair of a batch, named by an ID of the caller's choice
// (unique within the batch) that comes back with its answer.
type BatchLine struct {
	CustomID string
	Pair     Pair
}

// BatchStatus is where a batch stands.
type BatchStatus struct {
	// Status is the provider's: validating, in_progress, finalizing,
	// completed, failed, expired, cancelling or cancelled.
	Status string
	// Done: the batch ended (completed, failed, expired or cancelled); what
	// it answered is in OutputFileID, what failed in ErrorFileID.
	Done                     bool
	Total, Completed, Failed int
	OutputFileID             string
	ErrorFileID              string
}

// BatchOutputLine is one line of a batch's output or error file.
type BatchOutputLine struct {
	CustomID   string
	StatusCode int
	Body       json.RawMessage // a chat completion, or an error object
}

// Usage is the tokens a line's answer reports (0 for a failed line).
func (l BatchOutputLine) Usage() (promptTokens, completionTokens int) {
	var resp struct {
		Usage openai.Usage `json:"usage"`
	}
	if l.StatusCode != http.StatusOK || json.Unmarshal(l.Body, &resp) != nil {
		return 0, 0
	}
	return resp.Usage.PromptTokens, resp.Usage.CompletionTokens
}

// SubmitBatch uploads the lines' requests and creates a batch of them,
// returning its ID. Errors are typed as WritePair's are (*PermanentError
// for a refused request, *TransientError, *RateLimitedError).
func (c *Client) SubmitBatch(ctx context.Context, lines []BatchLine) (string, error) {
	if len(lines) == 0 {
		return "", errors.New("insight: a batch needs at least one line")
	}
	req := openai.CreateBatchWithUploadFileRequest{
		Endpoint:               openai.BatchEndpointChatCompletions,
		CompletionWindow:       "24h",
		UploadBatchFileRequest: openai.UploadBatchFileRequest{FileName: "matchmaker-insights.jsonl"},
	}
	for _, l := range lines {
		req.AddChatCompletion(l.CustomID, c.request(buildPromptData(l.Pair)))
	}
	resp, err := c.api.CreateBatchWithUploadFile(ctx, req)
	if err != nil {
		return "", c.batchError("create a batch", err)
	}
	return resp.ID, nil
}

// RetrieveBatch says where the batch stands.
func (c *Client) RetrieveBatch(ctx context.Context, batchID string) (BatchStatus, error) {
	resp, err := c.api.RetrieveBatch(ctx, batchID)
	if err != nil {
		return BatchStatus{}, c.batchError("retrieve batch "+batchID, err)
	}
	st := BatchStatus{Status: resp.Status, Total: resp.RequestCounts.Total,
		Completed: resp.RequestCounts.Completed, Failed: resp.RequestCounts.Failed}
	switch resp.Status {
	case "completed", "failed", "expired", "cancelled":
		st.Done = true
	}
	if resp.OutputFileID != nil {
		st.OutputFileID = *resp.OutputFileID
	}
	if resp.ErrorFileID != nil {
		st.ErrorFileID = *resp.ErrorFileID
	}
	return st, nil
}

// BatchOutput downloads a batch's output or error file.
func (c *Client) BatchOutput(ctx context.Context, fileID string) ([]BatchOutputLine, error) {
	raw, err := c.api.GetFileContent(ctx, fileID)
	if err != nil {
		return nil, c.batchError("download file "+fileID, err)
	}
	defer raw.Close()
	var out []BatchOutputLine
	sc := bufio.NewScanner(raw)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l struct {
			CustomID string `json:"custom_id"`
			Response *struct {
				StatusCode int             `json:"status_code"`
				Body       json.RawMessage `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, &TransientError{Kind: "server_error", Message: "a line of batch file " + fileID + " is not JSON: " + shortJSONError(err)}
		}
		line := BatchOutputLine{CustomID: l.CustomID}
		if l.Response != nil {
			line.StatusCode, line.Body = l.Response.StatusCode, l.Response.Body
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, c.batchError("download file "+fileID, err)
	}
	return out, nil
}

// CheckBatchAnswer reads the pair's answer from its batch line and
// validates it as WritePair does. The tokens the line reports are in the
// result also when the answer is refused.
func (c *Client) CheckBatchAnswer(line BatchOutputLine, p Pair) (Result, error) {
	res := Result{Attempts: 1}
	if line.StatusCode != http.StatusOK {
		return res, &TransientError{Kind: "server_error", StatusCode: line.StatusCode, Attempts: 1,
			Message: fmt.Sprintf("the batch answered this line with HTTP %d", line.StatusCode)}
	}
	var resp openai.ChatCompletionResponse
	if err := json.Unmarshal(line.Body, &resp); err != nil {
		return res, &InvalidAnswerError{Rule: RuleJSON, Reason: "the batch line is not a chat completion: " + shortJSONError(err)}
	}
	res.PromptTokens, res.CompletionTokens = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
	ff, fs, err := parseAnswer(resp, buildPromptData(p))
	if err != nil {
		return res, err
	}
	res.ForFirst, res.ForSecond = ff, fs
	return res, nil
}

// batchError types a Batch API call's failure as judge types a chat
// call's, scrubbed of the key.
func (c *Client) batchError(what string, err error) error {
	f := c.judge(err, 0, 1)
	return fmt.Errorf("insight: %s: %w", what, f.err)
}
