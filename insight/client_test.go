package insight_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
)

const testKey = "sk-test-SECRET-0123456789abcdef"

var (
	alice = insight.Profile{
		Name: "Alice Moreau", JobTitle: "Head of Operations", Company: "Parcelly", Industry: "Logistics",
		Interests: []string{"robotics", "supply chain"}, LookingFor: []string{"warehouse automation"},
		Offering: []string{"pilot sites"}, Bio: "I run three warehouses in Lyon.",
	}
	bob = insight.Profile{
		Name: "Bob Okafor", JobTitle: "Founder", Company: "Liftbot", Industry: "Robotics",
		Interests: []string{"robotics"}, LookingFor: []string{"pilot sites"},
		Offering: []string{"warehouse automation"}, Bio: "We build picking robots.",
	}
	pair = insight.Pair{First: alice, Second: bob, Shared: insight.Facts{
		SharedInterests: []string{"robotics"}, FirstOffersSecond: []string{"pilot sites"},
		SecondOffersFirst: []string{"warehouse automation"},
	}}
)

const (
	forAlice = "You and Bob both care about robotics, and Bob's Liftbot builds the warehouse automation you are looking for."
	forBob   = "Alice runs three warehouses and offers pilot sites, exactly what you need for Liftbot; ask Alice about a trial."
)

func good(int, fakeopenai.Request) fakeopenai.Response { return fakeopenai.Answer(forAlice, forBob) }

func newClient(t *testing.T, srv *fakeopenai.Server, mod func(*insight.Config)) *insight.Client {
	t.Helper()
	cfg := insight.Config{
		APIKey: testKey, Model: "gpt-test-mini", BaseURL: srv.URL(),
		RequestTimeout: 2 * time.Second, MaxAttempts: 3,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := insight.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sequence answers call i with rs[i-1], repeating the last one.
func sequence(rs ...fakeopenai.Response) func(int, fakeopenai.Request) fakeopenai.Response {
	return func(call int, _ fakeopenai.Request) fakeopenai.Response {
		return rs[min(call, len(rs))-1]
	}
}

func TestWritePairSuccess(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, func(int, fakeopenai.Request) fakeopenai.Response {
		r := fakeopenai.Answer(forAlice, forBob)
		r.PromptTokens, r.CompletionTokens = 321, 54
		return r
	})
	c := newClient(t, srv, nil)

	p := pair
	p.First.Bio = "Email me at alice@parcelly.example. Profile 3f2b8c1e-9d4a-4e7b-8a6f-1c2d3e4f5a6b. " +
		strings.Repeat("Warehouses are my life. ", 100)
	res, err := c.WritePair(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.ForFirst != forAlice || res.ForSecond != forBob {
		t.Errorf("result texts = %q / %q", res.ForFirst, res.ForSecond)
	}
	if res.PromptTokens != 321 || res.CompletionTokens != 54 || res.Attempts != 1 {
		t.Errorf("result = %+v", res)
	}

	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if req.Path != "/v1/chat/completions" || req.Model != "gpt-test-mini" {
		t.Errorf("path %q model %q", req.Path, req.Model)
	}
	if req.Authorization != "Bearer "+testKey {
		t.Errorf("Authorization = %q", req.Authorization)
	}
	rf := req.ResponseFormat
	if rf == nil || rf.Type != "json_schema" || rf.JSONSchema == nil || !rf.JSONSchema.Strict || rf.JSONSchema.Name == "" {
		t.Fatalf("response_format = %+v", rf)
	}
	var schema struct {
		Type                 string                     `json:"type"`
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
		AdditionalProperties bool                       `json:"additionalProperties"`
	}
	if err := json.Unmarshal(rf.JSONSchema.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Type != "object" || schema.Properties["for_first"] == nil || schema.Properties["for_second"] == nil ||
		strings.Join(schema.Required, ",") != "for_first,for_second" || schema.AdditionalProperties {
		t.Errorf("schema = %s", rf.JSONSchema.Schema)
	}
	if len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Role != "user" {
		t.Fatalf("messages = %+v", req.Messages)
	}
	sys := req.System()
	for _, rule := range []string{"280", "untrusted", "markdown", "URLs"} {
		if !strings.Contains(sys, rule) {
			t.Errorf("system prompt lacks %q", rule)
		}
	}
	if strings.Contains(sys, "Alice") || strings.Contains(sys, "Bob") {
		t.Error("profile data leaked into the system message")
	}

	user := req.User()
	start, end := strings.Index(user, "<profiles>"), strings.Index(user, "</profiles>")
	if start < 0 || end < start {
		t.Fatalf("user message lacks <profiles> delimiters:\n%s", user)
	}
	var data struct {
		First, Second map[string]any
		Shared        map[string]any `json:"shared_facts"`
	}
	if err := json.Unmarshal([]byte(user[start+len("<profiles>"):end]), &data); err != nil {
		t.Fatalf("profiles are not JSON: %v", err)
	}
	if data.First["name"] != "Alice Moreau" || data.Second["name"] != "Bob Okafor" || data.Second["company"] != "Liftbot" {
		t.Errorf("profiles = %+v", data)
	}
	if data.Shared["shared_interests"] == nil {
		t.Errorf("shared facts missing: %+v", data.Shared)
	}
	bio, _ := data.First["bio"].(string)
	if n := len([]rune(bio)); n == 0 || n > 600 {
		t.Errorf("bio has %d chars, want 1..600", n)
	}
	outside := user[:start] + user[end:]
	if strings.Contains(outside, "Alice") || strings.Contains(outside, "warehouse") {
		t.Errorf("profile data outside the delimiters:\n%s", outside)
	}
	for _, banned := range []string{"@", "3f2b8c1e", "9d4a-4e7b", testKey, `"email"`, `"id"`, `"user_id"`} {
		if strings.Contains(string(req.Body), banned) {
			t.Errorf("request body contains %q", banned)
		}
	}
}

func TestWritePairRetryAfterThenSuccess(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.RateLimited(1), fakeopenai.Answer(forAlice, forBob)))
	c := newClient(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	res, err := c.WritePair(ctx, pair)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, want ≥ Retry-After 1s", waited)
	}
	if res.Attempts != 2 || srv.Calls() != 2 {
		t.Errorf("attempts %d, calls %d, want 2", res.Attempts, srv.Calls())
	}
}

func TestWritePairRetryAfterPastDeadline(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.RateLimited(30), fakeopenai.Answer(forAlice, forBob)))
	c := newClient(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.WritePair(ctx, pair)
	// Well short of the 2s deadline: it did not wait for the 30s Retry-After.
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("gave up after %v, want at once", took)
	}
	var rl *insight.RateLimitedError
	if !errors.Is(err, insight.ErrRateLimited) || !errors.As(err, &rl) || insight.Classify(err) != "rate_limited" {
		t.Fatalf("err = %v (%s), want rate limited", err, insight.Classify(err))
	}
	if rl.RetryAfter != 30*time.Second || srv.Calls() != 1 {
		t.Errorf("RetryAfter %v, calls %d", rl.RetryAfter, srv.Calls())
	}
}

func TestWritePairRateLimitedUntilAttemptsRunOut(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.RateLimited(0))) // no Retry-After: backoff
	c := newClient(t, srv, func(cfg *insight.Config) { cfg.MaxAttempts = 2 })
	_, err := c.WritePair(context.Background(), pair)
	if insight.Classify(err) != "rate_limited" || srv.Calls() != 2 {
		t.Fatalf("err = %v (%s), calls %d", err, insight.Classify(err), srv.Calls())
	}
}

func TestWritePairServerErrorThenSuccess(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.Error(500, "The server had an error while processing your request."),
		fakeopenai.Error(503, "overloaded"), fakeopenai.Answer(forAlice, forBob)))
	c := newClient(t, srv, nil)
	res, err := c.WritePair(context.Background(), pair)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 3 || srv.Calls() != 3 {
		t.Errorf("attempts %d, calls %d, want 3", res.Attempts, srv.Calls())
	}
}

func TestWritePairServerErrorExhausted(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.Error(502, "bad gateway")))
	c := newClient(t, srv, nil)
	res, err := c.WritePair(context.Background(), pair)
	var te *insight.TransientError
	if !errors.As(err, &te) || insight.Classify(err) != "server_error" || te.StatusCode != 502 {
		t.Fatalf("err = %v (%s)", err, insight.Classify(err))
	}
	if res.Attempts != 3 || srv.Calls() != 3 {
		t.Errorf("attempts %d, calls %d, want 3", res.Attempts, srv.Calls())
	}
}

func TestWritePairHangThenSuccess(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.Hang(10*time.Second), fakeopenai.Answer(forAlice, forBob)))
	c := newClient(t, srv, func(cfg *insight.Config) { cfg.RequestTimeout = 200 * time.Millisecond })
	start := time.Now()
	res, err := c.WritePair(context.Background(), pair)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("took %v", took)
	}
	if res.Attempts != 2 || srv.Calls() != 2 {
		t.Errorf("attempts %d, calls %d, want 2", res.Attempts, srv.Calls())
	}
}

func TestWritePairAllAttemptsHang(t *testing.T) {
	t.Parallel()
	t.Run("timeout", func(t *testing.T) {
		srv := fakeopenai.New(t, sequence(fakeopenai.Hang(10*time.Second)))
		// Long enough for every attempt to reach the server on a loaded
		// machine (with 100 ms, make test once saw an attempt time out
		// before the fake server counted it).
		c := newClient(t, srv, func(cfg *insight.Config) { cfg.RequestTimeout = 500 * time.Millisecond })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := c.WritePair(ctx, pair)
		if insight.Classify(err) != "timeout" || res.Attempts != 3 || srv.Calls() != 3 {
			t.Fatalf("err = %v (%s), attempts %d, calls %d", err, insight.Classify(err), res.Attempts, srv.Calls())
		}
	})
	t.Run("budget", func(t *testing.T) {
		srv := fakeopenai.New(t, sequence(fakeopenai.Hang(10*time.Second)))
		c := newClient(t, srv, func(cfg *insight.Config) { cfg.RequestTimeout = 5 * time.Second })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.WritePair(ctx, pair)
		if insight.Classify(err) != "budget" || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v (%s), want budget", err, insight.Classify(err))
		}
		if took := time.Since(start); took > 2500*time.Millisecond {
			t.Errorf("returned after %v, want about the 300ms budget", took)
		}
	})
}

func TestWritePairDroppedConnectionRetried(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.Hang(10*time.Millisecond), fakeopenai.Answer(forAlice, forBob)))
	c := newClient(t, srv, nil)
	res, err := c.WritePair(context.Background(), pair)
	if err != nil || res.Attempts != 2 {
		t.Fatalf("err %v, attempts %d", err, res.Attempts)
	}
}

func TestWritePairMalformedBodyRetried(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.Malformed(), fakeopenai.Response{Body: "<html>502 Bad Gateway</html>"},
		fakeopenai.Answer(forAlice, forBob)))
	c := newClient(t, srv, nil)
	res, err := c.WritePair(context.Background(), pair)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 3 || srv.Calls() != 3 {
		t.Errorf("attempts %d, calls %d, want 3", res.Attempts, srv.Calls())
	}

	srv2 := fakeopenai.New(t, sequence(fakeopenai.Malformed()))
	_, err = newClient(t, srv2, func(cfg *insight.Config) { cfg.MaxAttempts = 2 }).WritePair(context.Background(), pair)
	if insight.Classify(err) != "server_error" || srv2.Calls() != 2 {
		t.Fatalf("err = %v (%s), calls %d", err, insight.Classify(err), srv2.Calls())
	}
}

func TestWritePairInvalidAnswerNotRetried(t *testing.T) {
	t.Parallel()
	cases := map[string]fakeopenai.Response{
		"markdown":     fakeopenai.Answer("**Bob** builds robots, and you need robots for your warehouses.", forBob),
		"uuid":         fakeopenai.Answer("Meet Bob (3f2b8c1e-9d4a-4e7b-8a6f-1c2d3e4f5a6b), who builds robots.", forBob),
		"missing name": fakeopenai.Answer("You should meet this founder, who builds warehouse robots.", forBob),
		"too long":     fakeopenai.Answer("Meet Bob. "+strings.Repeat("He builds robots. ", 20), forBob),
		"newline":      fakeopenai.Answer(forAlice, "Alice runs warehouses.\nAsk Alice about a pilot."),
		"not json":     fakeopenai.Content("Alice and Bob should meet."),
		"refusal":      {Refusal: "I can't help with that."},
	}
	for name, resp := range cases {
		t.Run(name, func(t *testing.T) {
			srv := fakeopenai.New(t, sequence(resp, fakeopenai.Answer(forAlice, forBob)))
			res, err := newClient(t, srv, nil).WritePair(context.Background(), pair)
			var inv *insight.InvalidAnswerError
			if !errors.As(err, &inv) || !strings.HasPrefix(insight.Classify(err), "invalid_") {
				t.Fatalf("err = %v, want *InvalidAnswerError", err)
			}
			if srv.Calls() != 1 || res.Attempts != 1 {
				t.Errorf("calls %d, attempts %d, want 1", srv.Calls(), res.Attempts)
			}
			if res.ForFirst != "" || res.ForSecond != "" || res.PromptTokens == 0 {
				t.Errorf("result = %+v, want no texts but the tokens spent", res)
			}
		})
	}
}

func TestWritePairPermanentErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		resp   fakeopenai.Response
		status int
	}{
		{"401 bad key", fakeopenai.Error(401, "Incorrect API key provided: "+testKey+". You can find your API key at https://platform.openai.com/account/api-keys."), 401},
		{"401 plain body", fakeopenai.Response{Status: 401, Body: "unauthorized key=" + testKey}, 401},
		{"403", fakeopenai.Error(403, "Project does not have access to model"), 403},
		{"404 model", fakeopenai.Error(404, "The model `gpt-test-mini` does not exist or you do not have access to it."), 404},
		{"400", fakeopenai.Error(400, "Invalid schema for response_format"), 400},
		{"429 quota", fakeopenai.Response{Status: 429, Body: `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`}, 429},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeopenai.New(t, sequence(tc.resp, fakeopenai.Answer(forAlice, forBob)))
			res, err := newClient(t, srv, nil).WritePair(context.Background(), pair)
			var pe *insight.PermanentError
			if !errors.As(err, &pe) || insight.Classify(err) != "permanent" {
				t.Fatalf("err = %v (%s), want *PermanentError", err, insight.Classify(err))
			}
			if pe.StatusCode != tc.status {
				t.Errorf("status %d, want %d", pe.StatusCode, tc.status)
			}
			if srv.Calls() != 1 || res.Attempts != 1 {
				t.Errorf("calls %d, attempts %d: want 1 call, no retry", srv.Calls(), res.Attempts)
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error text leaks the key: %s", err)
			}
		})
	}
}

// Every failure path echoes the key back; no error text may contain it.
func TestErrorsNeverContainKey(t *testing.T) {
	t.Parallel()
	leak := "key " + testKey + " rejected"
	cases := map[string]struct {
		resp fakeopenai.Response
		mod  func(*insight.Config)
	}{
		"429":       {resp: fakeopenai.Error(429, leak)},
		"500":       {resp: fakeopenai.Error(500, leak)},
		"500 plain": {resp: fakeopenai.Response{Status: 500, Body: leak}},
		"malformed": {resp: fakeopenai.Response{Body: `{"x":"` + leak}},
		"invalid":   {resp: fakeopenai.Answer(leak+" and more words about Bob", forBob)},
		"timeout":   {resp: fakeopenai.Hang(time.Second), mod: func(c *insight.Config) { c.RequestTimeout = 50 * time.Millisecond }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := fakeopenai.New(t, sequence(tc.resp))
			c := newClient(t, srv, func(cfg *insight.Config) {
				cfg.MaxAttempts = 2
				if tc.mod != nil {
					tc.mod(cfg)
				}
			})
			_, err := c.WritePair(context.Background(), pair)
			if err == nil {
				t.Fatal("no error")
			}
			if s := fmt.Sprintf("%v %+v", err, err); strings.Contains(s, testKey) || strings.Contains(s, "SECRET") {
				t.Errorf("error leaks the key: %s", s)
			}
		})
	}
	if _, err := insight.New(insight.Config{APIKey: testKey}); err == nil || strings.Contains(err.Error(), testKey) {
		t.Errorf("New without model: %v", err)
	}
	if _, err := insight.New(insight.Config{APIKey: testKey, Model: "m", BaseURL: "localhost:1/" + testKey}); err == nil || strings.Contains(err.Error(), testKey) {
		t.Errorf("New with bad base URL: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, cfg := range []insight.Config{
		{Model: "m"}, {APIKey: "k"}, {APIKey: "k", Model: "m", BaseURL: "not a url"},
		{APIKey: "k", Model: "m", MaxAttempts: -1}, {APIKey: "k", Model: "m", RequestsPerMinute: -1},
	} {
		if _, err := insight.New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
	if _, err := insight.New(insight.Config{APIKey: "k", Model: "m"}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestWritePairCanceled(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, sequence(fakeopenai.Hang(10*time.Second)))
	c := newClient(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.WritePair(ctx, pair)
	if insight.Classify(err) != "canceled" || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v (%s)", err, insight.Classify(err))
	}
}

func TestBaseURLWithoutV1(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, good)
	c := newClient(t, srv, func(cfg *insight.Config) { cfg.BaseURL = strings.TrimSuffix(srv.URL(), "/v1") + "/" })
	if _, err := c.WritePair(context.Background(), pair); err != nil {
		t.Fatal(err)
	}
	if p := srv.Requests()[0].Path; p != "/chat/completions" {
		t.Errorf("path %q", p)
	}
}

func TestClientRateLimitSpacing(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, good)
	c := newClient(t, srv, func(cfg *insight.Config) { cfg.RequestsPerMinute = 600 }) // 100ms apart
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := c.WritePair(context.Background(), pair); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("4 requests at 600/min took %v, want ≥ 300ms", took)
	}
	if srv.Calls() != 4 {
		t.Errorf("calls %d", srv.Calls())
	}
}

// Echo with latency, many pairs at once: every answer validates.
func TestConcurrentPairsAgainstEcho(t *testing.T) {
	t.Parallel()
	srv := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		return fakeopenai.Echo(call, req).After(50 * time.Millisecond)
	})
	c := newClient(t, srv, nil)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 40 {
		wg.Go(func() {
			p := insight.Pair{
				First:  insight.Profile{Name: fmt.Sprintf("Ann%d Lee", i), Interests: []string{"ai"}},
				Second: insight.Profile{Name: fmt.Sprintf("Ben%d Cho", i), Interests: []string{"ai"}},
				Shared: insight.Facts{SharedInterests: []string{"ai safety"}},
			}
			res, err := c.WritePair(context.Background(), p)
			if err != nil || !strings.Contains(res.ForFirst, fmt.Sprintf("Ben%d", i)) || !strings.Contains(res.ForSecond, fmt.Sprintf("Ann%d", i)) {
				failed.Add(1)
				t.Errorf("pair %d: %+v, %v", i, res, err)
			}
		})
	}
	wg.Wait()
	if srv.Calls() != 40 || failed.Load() != 0 {
		t.Errorf("calls %d, failed %d", srv.Calls(), failed.Load())
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := map[string]error{
		"":               nil,
		"rate_limited":   fmt.Errorf("wrapped: %w", &insight.RateLimitedError{}),
		"timeout":        &insight.TransientError{Kind: "timeout"},
		"server_error":   &insight.TransientError{Kind: "server_error"},
		"invalid_answer": &insight.InvalidAnswerError{Reason: "x"},
		"invalid_name":   &insight.InvalidAnswerError{Rule: insight.RuleName, Reason: "x"},
		"permanent":      &insight.PermanentError{StatusCode: http.StatusUnauthorized},
		"budget":         fmt.Errorf("x: %w", context.DeadlineExceeded),
		"canceled":       context.Canceled,
		"other":          errors.New("boom"),
	}
	for want, err := range cases {
		if got := insight.Classify(err); got != want {
			t.Errorf("Classify(%v) = %q, want %q", err, got, want)
		}
	}
}
