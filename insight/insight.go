// Package insight writes the short "why you two should meet" texts for a
// matched pair with an OpenAI-compatible chat model. Ranking happens
// elsewhere, deterministically; this package only writes text.
//
// One chat completion per pair returns both directions as Structured
// Outputs. Profile text is untrusted: it is sanitized, capped and sent as
// JSON data between delimiters, and every answer is validated before use.
// Transient failures are retried within the caller's context; permanent
// ones (bad key, unknown model, bad request) are returned at once as
// *PermanentError so the caller can stop using the model for the batch.
package insight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/eventmatch/matchmaker/internal/telemetry"
)

// Config configures a Client.
type Config struct {
	APIKey  string
	Model   string
	BaseURL string // "" means OpenAI's; a compatible server's URL includes its /v1

	// RequestsPerMinute is a client-wide limit shared by all goroutines,
	// retries included; 0 means unlimited.
	RequestsPerMinute int
	// RequestTimeout bounds each HTTP attempt; 0 means 30s.
	RequestTimeout time.Duration
	// MaxAttempts bounds the attempts per pair for transient errors (429,
	// 5xx, timeouts, dropped connections, malformed bodies); 0 means 3.
	MaxAttempts int
	// HTTPClient is optional; it is copied, not modified.
	HTTPClient *http.Client
}

// Profile is what the model may know about an attendee. There is no e-mail
// or ID on purpose.
type Profile struct {
	Name, JobTitle, Company, Industry string
	Interests, LookingFor, Offering   []string
	Bio                               string
}

// Facts are the deterministic reasons for the match that the model may cite.
type Facts struct {
	SharedInterests   []string
	FirstOffersSecond []string // First offers what Second is looking for
	SecondOffersFirst []string // Second offers what First is looking for
	SameIndustry      string
	SharedBioTerms    []string
}

// Pair is one match to write insights for.
type Pair struct {
	First, Second Profile
	Shared        Facts
}

// Result holds the two insights. On error, WritePair still returns the
// attempts made and the tokens reported so far.
type Result struct {
	ForFirst  string // addressed to First, about Second
	ForSecond string // addressed to Second, about First

	PromptTokens, CompletionTokens int
	Attempts                       int
}

const (
	defaultRequestTimeout = 30 * time.Second
	defaultMaxAttempts    = 3
	// maxRetryAfter is the longest server-requested wait (Retry-After)
	// WritePair waits out when the context has no deadline.
	maxRetryAfter = time.Minute
)

// Client writes insights. It is safe for concurrent use.
type Client struct {
	api         *openai.Client
	key         string
	model       string
	limiter     *limiter
	timeout     time.Duration
	maxAttempts int
	backoffBase time.Duration
	backoffMax  time.Duration
}

// New returns a client, or an error if the key or model is missing or the
// configuration is invalid. The error never contains the key.
func New(cfg Config) (*Client, error) {
	switch {
	case strings.TrimSpace(cfg.APIKey) == "":
		return nil, errors.New("insight: APIKey is empty")
	case strings.TrimSpace(cfg.Model) == "":
		return nil, errors.New("insight: Model is empty")
	case cfg.RequestsPerMinute < 0, cfg.MaxAttempts < 0, cfg.RequestTimeout < 0:
		return nil, errors.New("insight: RequestsPerMinute, MaxAttempts and RequestTimeout must not be negative")
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("insight: BaseURL must be an absolute http(s) URL")
		}
		oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	oc.HTTPClient = httpClient(cfg.HTTPClient)

	c := &Client{
		api:         openai.NewClientWithConfig(oc),
		key:         cfg.APIKey,
		model:       cfg.Model,
		limiter:     newLimiter(cfg.RequestsPerMinute),
		timeout:     cfg.RequestTimeout,
		maxAttempts: cfg.MaxAttempts,
		backoffBase: 250 * time.Millisecond,
		backoffMax:  8 * time.Second,
	}
	if c.timeout == 0 {
		c.timeout = defaultRequestTimeout
	}
	if c.maxAttempts == 0 {
		c.maxAttempts = defaultMaxAttempts
	}
	return c, nil
}

// httpClient copies base (or makes a client with a pooled transport) and
// wraps its transport to capture Retry-After headers and, with tracing on,
// to make each request a span of the insight step that sent it.
func httpClient(base *http.Client) *http.Client {
	var hc http.Client
	if base != nil {
		hc = *base
	}
	rt := hc.Transport
	if rt == nil {
		if base != nil {
			rt = http.DefaultTransport
		} else {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.MaxIdleConnsPerHost = 64 // many concurrent pairs go to one host
			rt = t
		}
	}
	hc.Transport = telemetry.HTTPTransport(hintTransport{base: rt})
	return &hc
}

func (c *Client) request(d promptData) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{
		Model: c.model,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: systemPrompt},
			{Role: openai.ChatMessageRoleUser, Content: userMessage(d)},
		},
		ResponseFormat: &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name:   answerSchemaName,
				Schema: answerSchema,
				Strict: true,
			},
		},
	}
}

// WritePair asks the model for both insights of a pair in one completion,
// retrying transient failures within ctx. Errors are *PermanentError,
// *InvalidAnswerError, *RateLimitedError (errors.Is ErrRateLimited),
// *TransientError, or the context's error; Classify labels them.
func (c *Client) WritePair(ctx context.Context, p Pair) (Result, error) {
	data := buildPromptData(p)
	req := c.request(data)
	var res Result
	var last error
	for {
		if err := c.limiter.wait(ctx); err != nil {
			return res, c.stopped(err, res.Attempts, last)
		}
		res.Attempts++
		resp, hint, err := c.attempt(ctx, req)
		if err == nil {
			res.PromptTokens += resp.Usage.PromptTokens
			res.CompletionTokens += resp.Usage.CompletionTokens
			ff, fs, err := parseAnswer(resp, data)
			if err != nil {
				return res, err
			}
			res.ForFirst, res.ForSecond = ff, fs
			return res, nil
		}
		if ctx.Err() != nil {
			return res, c.stopped(ctx.Err(), res.Attempts, err)
		}
		f := c.judge(err, hint, res.Attempts)
		if !f.retry {
			return res, f.err
		}
		last = f.err
		if res.Attempts >= c.maxAttempts {
			return res, f.err
		}
		wait := f.wait
		if wait == 0 {
			wait = c.backoff(res.Attempts)
		}
		if !fits(ctx, wait) {
			return res, f.err
		}
		if err := sleep(ctx, wait); err != nil {
			return res, c.stopped(err, res.Attempts, last)
		}
	}
}

// attempt makes one HTTP request bounded by the per-attempt timeout.
func (c *Client) attempt(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	actx, hint := withHint(actx)
	resp, err := c.api.CreateChatCompletion(actx, req)
	return resp, hint.get(), err
}

// fits reports whether waiting d still leaves time before ctx's deadline.
// Without a deadline, a wait is capped at maxRetryAfter.
func fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	if !ok {
		return d <= maxRetryAfter
	}
	return time.Until(dl) > d
}

// backoff is the wait after the n-th failed attempt: base·2^(n-1), capped,
// plus up to 50% jitter.
func (c *Client) backoff(n int) time.Duration {
	d := c.backoffBase << min(n-1, 16)
	if d <= 0 || d > c.backoffMax {
		d = c.backoffMax
	}
	return d + rand.N(d/2+1)
}

// failure is the verdict on one failed attempt.
type failure struct {
	err   error // returned if WritePair gives up now
	retry bool
	wait  time.Duration // server-requested wait; 0 means backoff
}

// judge classifies a failed attempt. Every message it keeps is scrubbed of
// the key.
func (c *Client) judge(err error, hint time.Duration, attempts int) failure {
	var (
		reqErr *openai.RequestError
		apiErr *openai.APIError
		status int
		msg    string
		typ    string
		code   string
	)
	switch {
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
		if errors.As(reqErr.Err, &apiErr) {
			msg, typ, code = apiErr.Message, apiErr.Type, codeString(apiErr.Code)
		} else {
			msg = string(reqErr.Body)
		}
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
		msg, typ, code = apiErr.Message, apiErr.Type, codeString(apiErr.Code)
	}
	msg = scrub(msg, c.key)

	if status != 0 {
		switch {
		case status == http.StatusTooManyRequests && (code == "insufficient_quota" || typ == "insufficient_quota"):
			return failure{err: &PermanentError{StatusCode: status, Type: typ, Code: code, Message: msg}}
		case status == http.StatusTooManyRequests:
			return failure{
				err:   &RateLimitedError{RetryAfter: hint, Attempts: attempts, Message: msg},
				retry: true,
				wait:  hint,
			}
		case status == http.StatusRequestTimeout:
			return failure{err: &TransientError{Kind: "timeout", StatusCode: status, Attempts: attempts, Message: msg}, retry: true}
		case status >= 500 || status == http.StatusConflict:
			return failure{err: &TransientError{Kind: "server_error", StatusCode: status, Attempts: attempts, Message: msg}, retry: true, wait: hint}
		case status >= 400:
			return failure{err: &PermanentError{StatusCode: status, Type: typ, Code: code, Message: msg}}
		}
		return failure{err: &otherError{msg: scrub(fmt.Sprintf("insight: unexpected HTTP %d: %s", status, msg), c.key)}}
	}

	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		urlErr    *url.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return failure{err: &TransientError{Kind: "timeout", Attempts: attempts,
			Message: fmt.Sprintf("no answer within %v", c.timeout)}, retry: true}
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF) && !errors.As(err, &urlErr):
		return failure{err: &TransientError{Kind: "server_error", Attempts: attempts,
			Message: "malformed response body: " + scrub(err.Error(), c.key)}, retry: true}
	case errors.As(err, &urlErr):
		kind := "server_error"
		if urlErr.Timeout() {
			kind = "timeout"
		}
		return failure{err: &TransientError{Kind: kind, Attempts: attempts,
			Message: "request failed: " + scrub(urlErr.Err.Error(), c.key)}, retry: true}
	}
	return failure{err: &otherError{msg: "insight: " + scrub(err.Error(), c.key)}}
}

func codeString(code any) string {
	if code == nil {
		return ""
	}
	return fmt.Sprint(code)
}

// stopped wraps the context's end (or the limiter's refusal of a slot past
// the deadline) with what happened before it.
func (c *Client) stopped(err error, attempts int, last error) error {
	what := "canceled"
	if errors.Is(err, context.DeadlineExceeded) {
		what = "deadline exceeded"
	}
	msg := fmt.Sprintf("insight: %s after %d attempt(s)", what, attempts)
	if last != nil {
		msg += " (last failure: " + last.Error() + ")"
	}
	return &stopError{msg: scrub(msg+": "+err.Error(), c.key), err: err}
}
