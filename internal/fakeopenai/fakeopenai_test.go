package fakeopenai_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/internal/fakeopenai"
)

const chatBody = `{"model":"m","messages":[{"role":"system","content":"rules"},{"role":"user","content":"go\n<profiles>\n{\"first\":{\"name\":\"Ann Lee\"},\"second\":{\"name\":\"Ben Cho\"},\"shared_facts\":{\"shared_interests\":[\"chess\"]}}\n</profiles>"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":{"type":"object"}}}}`

func post(t *testing.T, ctx context.Context, url string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

func TestEchoAndRecording(t *testing.T) {
	srv := fakeopenai.New(t, nil)
	resp, body, err := post(t, context.Background(), srv.URL()+"/chat/completions")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v %s", err, resp, body)
	}
	var out struct {
		Choices []struct {
			Message struct{ Content string }
		}
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || len(out.Choices) != 1 || out.Usage.PromptTokens == 0 {
		t.Fatalf("body %s: %v", body, err)
	}
	var a struct {
		ForFirst  string `json:"for_first"`
		ForSecond string `json:"for_second"`
	}
	if err := json.Unmarshal([]byte(out.Choices[0].Message.Content), &a); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.ForFirst, "Ben") || !strings.Contains(a.ForSecond, "Ann") || !strings.Contains(a.ForFirst, "chess") {
		t.Errorf("echo answer %+v", a)
	}
	reqs := srv.Requests()
	if srv.Calls() != 1 || len(reqs) != 1 {
		t.Fatalf("calls %d", srv.Calls())
	}
	r := reqs[0]
	if r.Authorization != "Bearer k" || r.Model != "m" || r.System() != "rules" || !strings.Contains(r.User(), "<profiles>") ||
		r.ResponseFormat == nil || r.ResponseFormat.JSONSchema == nil || !r.ResponseFormat.JSONSchema.Strict {
		t.Errorf("request %+v", r)
	}

	// Without /v1 and on unknown paths.
	base := strings.TrimSuffix(srv.URL(), "/v1")
	if resp, _, err := post(t, context.Background(), base+"/chat/completions"); err != nil || resp.StatusCode != 200 {
		t.Errorf("no /v1: %v %v", err, resp)
	}
	if resp, _, err := post(t, context.Background(), base+"/v1/models"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown path: %v %v", err, resp)
	}
}

func TestErrorResponses(t *testing.T) {
	srv := fakeopenai.New(t, func(call int, _ fakeopenai.Request) fakeopenai.Response {
		switch call {
		case 1:
			return fakeopenai.RateLimited(2)
		case 2:
			return fakeopenai.Error(401, "bad key")
		default:
			return fakeopenai.Malformed()
		}
	})
	url := srv.URL() + "/chat/completions"
	resp, body, _ := post(t, context.Background(), url)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(body, "rate_limit_exceeded") {
		t.Errorf("429: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body, _ = post(t, context.Background(), url)
	if resp.StatusCode != 401 || !strings.Contains(body, `"message":"bad key"`) {
		t.Errorf("401: %d %s", resp.StatusCode, body)
	}
	resp, body, _ = post(t, context.Background(), url)
	if resp.StatusCode != 200 || json.Valid([]byte(body)) {
		t.Errorf("malformed: %d %s", resp.StatusCode, body)
	}
}

func TestHangEndsWithClientAndServer(t *testing.T) {
	srv := fakeopenai.New(t, func(int, fakeopenai.Request) fakeopenai.Response { return fakeopenai.Hang(time.Minute) })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := post(t, ctx, srv.URL()+"/chat/completions"); err == nil {
		t.Fatal("hang answered")
	}
	// A client still waiting when the server closes is released promptly.
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, _, err := post(t, context.Background(), srv.URL()+"/chat/completions"); err == nil {
			t.Error("hang answered")
		}
	})
	time.Sleep(50 * time.Millisecond)
	srv.Close()
	wg.Wait()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
}

func TestConcurrentCalls(t *testing.T) {
	srv := fakeopenai.New(t, func(call int, r fakeopenai.Request) fakeopenai.Response {
		return fakeopenai.Echo(call, r).After(20 * time.Millisecond)
	})
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if resp, _, err := post(t, context.Background(), srv.URL()+"/chat/completions"); err != nil || resp.StatusCode != 200 {
				t.Errorf("%v %v", err, resp)
			}
		})
	}
	wg.Wait()
	if srv.Calls() != 30 || len(srv.Requests()) != 30 {
		t.Errorf("calls %d", srv.Calls())
	}
}
