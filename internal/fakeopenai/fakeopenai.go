// Package fakeopenai is a local OpenAI-compatible chat completions server for
// tests, with the Batch API's /v1/files and /v1/batches (batch.go). Nothing in it reaches the network beyond the loopback listener of an
// httptest.Server.
//
// A test chooses, per call, what the server answers:
//
//	srv := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
//		if call == 1 {
//			return fakeopenai.RateLimited(1) // 429, Retry-After: 1
//		}
//		return fakeopenai.Answer("You and Bob ...", "You and Alice ...")
//	})
//	cfg.BaseURL = srv.URL()
//
// A nil behaviour answers every call with Echo. The package does not import
// the insight package (whose tests import this one); the few conventions it
// shares with it (the <profiles> delimiters, the "first"/"second" profile
// keys and the "for_first"/"for_second" answer keys) are repeated here.
package fakeopenai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// Message is one chat message of a request.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// JSONSchema is the json_schema part of a response_format.
type JSONSchema struct {
	Name   string          `json:"name"`
	Strict bool            `json:"strict"`
	Schema json.RawMessage `json:"schema"`
}

// ResponseFormat is a request's response_format.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// Request is a decoded chat completion request as the server received it.
type Request struct {
	Path           string
	Authorization  string // the Authorization header value, e.g. "Bearer sk-test"
	Model          string
	Messages       []Message
	ResponseFormat *ResponseFormat
	Body           []byte // the raw request body
}

// System returns the content of the first system message ("" if none).
func (r Request) System() string { return r.firstOf("system") }

// User returns the content of the first user message ("" if none).
func (r Request) User() string { return r.firstOf("user") }

func (r Request) firstOf(role string) string {
	for _, m := range r.Messages {
		if m.Role == role {
			return m.Content
		}
	}
	return ""
}

// Response is what the server does with one call. The zero value answers 200
// with an empty assistant message.
type Response struct {
	// Content is the assistant message content of a 200 answer.
	Content string
	// Refusal, when set, is sent as the message's refusal field.
	Refusal string
	// FinishReason defaults to "stop".
	FinishReason string
	// PromptTokens and CompletionTokens are reported as usage; zero values
	// are replaced by a rough estimate (bytes/4).
	PromptTokens, CompletionTokens int

	// Status, when non-zero and not 200, is the status code sent with Body
	// (an OpenAI-style error JSON is generated when Body is empty).
	Status int
	// Body, when set, is sent verbatim instead of a generated body: with
	// Status 0 it is a 200 answer whose body is Body (e.g. malformed JSON).
	Body string
	// Header holds extra response headers, e.g. Retry-After.
	Header http.Header

	// Latency is waited before answering.
	Latency time.Duration
	// Hang, when non-zero, makes the server wait this long after Latency and
	// then drop the connection without answering. Both waits end early when
	// the client gives up or the server is closed.
	Hang time.Duration
}

// After returns r answered only after latency d.
func (r Response) After(d time.Duration) Response {
	r.Latency = d
	return r
}

// Answer is a 200 answer whose content is the structured output the insight
// client asks for: {"for_first": forFirst, "for_second": forSecond}.
func Answer(forFirst, forSecond string) Response {
	b, err := json.Marshal(struct {
		ForFirst  string `json:"for_first"`
		ForSecond string `json:"for_second"`
	}{forFirst, forSecond})
	if err != nil {
		panic(err) // strings always marshal
	}
	return Response{Content: string(b)}
}

// Content is a 200 answer with this raw assistant content.
func Content(content string) Response { return Response{Content: content} }

// Error is an OpenAI-style error answer with this status code and message.
func Error(status int, message string) Response {
	typ, code := "invalid_request_error", ""
	switch {
	case status == http.StatusUnauthorized:
		code = "invalid_api_key"
	case status == http.StatusNotFound:
		code = "model_not_found"
	case status == http.StatusTooManyRequests:
		typ, code = "requests", "rate_limit_exceeded"
	case status >= 500:
		typ = "server_error"
	}
	return Response{Status: status, Body: errorBody(message, typ, code)}
}

// RateLimited is a 429 answer with a Retry-After header of retryAfterSeconds
// (no header when it is below 1).
func RateLimited(retryAfterSeconds int) Response {
	r := Error(http.StatusTooManyRequests, "Rate limit reached for requests. Please try again later.")
	if retryAfterSeconds > 0 {
		r.Header = http.Header{"Retry-After": []string{strconv.Itoa(retryAfterSeconds)}}
	}
	return r
}

// Hang waits d (or until the client gives up), then drops the connection.
func Hang(d time.Duration) Response { return Response{Hang: d} }

// Malformed is a 200 answer whose body is cut-off, invalid JSON.
func Malformed() Response {
	return Response{Body: `{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"role":"assist`}
}

func errorBody(message, typ, code string) string {
	var c any
	if code != "" {
		c = code
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": message, "type": typ, "param": nil, "code": c,
	}})
	return string(b)
}

// Server is a running fake. It is closed by the test's cleanup.
type Server struct {
	srv    *httptest.Server
	behave func(call int, req Request) Response

	mu    sync.Mutex
	calls int
	reqs  []Request

	// The Batch API's state (batch.go).
	files          map[string]*storedFile
	batches        map[string]*fakeBatch
	nextID         int
	batchDelay     time.Duration
	batchOutcome   string
	failRetrievals int
	batchLines     int
	completing     sync.Mutex

	done      chan struct{}
	closeOnce sync.Once
}

// New starts a fake server for the test. behave is called once per chat
// completion request with the 1-based call number; nil means Echo. It may be
// called concurrently.
func New(t testing.TB, behave func(call int, req Request) Response) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", behave)
	if err != nil {
		t.Fatalf("start fake OpenAI server: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen starts a fake server on addr outside a test (make bench serves one
// in its own process, scripts/ai-load.sh runs cmd/fakeopenai); the caller
// closes it.
func Listen(addr string, behave func(call int, req Request) Response) (*Server, error) {
	if behave == nil {
		behave = Echo
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{behave: behave, done: make(chan struct{}),
		files: map[string]*storedFile{}, batches: map[string]*fakeBatch{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", s.chat)
	mux.HandleFunc("/chat/completions", s.chat)
	s.routeBatchAPI(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, http.StatusNotFound, errorBody("Unknown request URL: "+r.Method+" "+r.URL.Path, "invalid_request_error", "unknown_url"))
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	return s, nil
}

// URL is the base URL for an OpenAI client; it ends in /v1.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Calls is the number of chat completion requests received so far, batch
// lines included (see BatchLines).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Requests returns a copy of the chat completion requests received so far,
// batch lines included (their Path is /v1/batches/<batch id>).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Close ends pending waits and shuts the server down. It is safe to call more
// than once; New registers it as a test cleanup.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeBody(w, http.StatusMethodNotAllowed, errorBody("Method not allowed", "invalid_request_error", ""))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req := Request{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: body}
	var decoded struct {
		Model          string          `json:"model"`
		Messages       []Message       `json:"messages"`
		ResponseFormat *ResponseFormat `json:"response_format"`
	}
	decodeErr := json.Unmarshal(body, &decoded)
	req.Model, req.Messages, req.ResponseFormat = decoded.Model, decoded.Messages, decoded.ResponseFormat

	s.mu.Lock()
	s.calls++
	call := s.calls
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()

	if decodeErr != nil {
		writeBody(w, http.StatusBadRequest, errorBody("We could not parse the JSON body of your request.", "invalid_request_error", ""))
		return
	}

	resp := s.behave(call, req)
	if !s.wait(r, resp.Latency) {
		return
	}
	if resp.Hang > 0 {
		s.wait(r, resp.Hang)
		dropConnection(w)
		return
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	switch {
	case resp.Status != 0 && resp.Status != http.StatusOK:
		b := resp.Body
		if b == "" {
			b = errorBody(http.StatusText(resp.Status), "invalid_request_error", "")
		}
		writeBody(w, resp.Status, b)
	case resp.Body != "":
		writeBody(w, http.StatusOK, resp.Body)
	default:
		writeBody(w, http.StatusOK, completionBody(call, req, resp))
	}
}

// wait sleeps d unless the client or the server gives up first; it reports
// whether the full duration passed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func writeBody(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func completionBody(call int, req Request, r Response) string {
	prompt, completion := r.PromptTokens, r.CompletionTokens
	if prompt == 0 {
		prompt = len(req.Body)/4 + 1
	}
	if completion == 0 {
		completion = len(r.Content)/4 + 1
	}
	finish := r.FinishReason
	if finish == "" {
		finish = "stop"
	}
	msg := map[string]any{"role": "assistant", "content": r.Content}
	if r.Refusal != "" {
		msg["refusal"] = r.Refusal
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	_ = enc.Encode(map[string]any{
		"id":      fmt.Sprintf("chatcmpl-fake-%d", call),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
		"usage": map[string]any{
			"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
		},
	})
	return buf.String()
}

// Echo is the default behaviour: a plausible, grounded answer built from the
// names and shared facts it finds in the request's <profiles> data, so load
// tests get answers that pass the insight client's validation.
func Echo(_ int, req Request) Response {
	var data struct {
		First  echoProfile `json:"first"`
		Second echoProfile `json:"second"`
		Shared struct {
			SharedInterests []string `json:"shared_interests"`
			SameIndustry    string   `json:"same_industry"`
		} `json:"shared_facts"`
	}
	user := req.User()
	if i := strings.Index(user, "<profiles>"); i >= 0 {
		rest := user[i+len("<profiles>"):]
		if j := strings.Index(rest, "</profiles>"); j >= 0 {
			_ = json.Unmarshal([]byte(rest[:j]), &data)
		}
	}
	topic := "what you are each working on"
	switch {
	case len(data.Shared.SharedInterests) > 0:
		topic = data.Shared.SharedInterests[0]
	case data.Shared.SameIndustry != "":
		topic = data.Shared.SameIndustry
	}
	first, second := data.First.firstName(), data.Second.firstName()
	return Answer(
		fmt.Sprintf("You and %s both care about %s, so %s is a great person to compare notes with here.", second, topic, second),
		fmt.Sprintf("You and %s both care about %s, so %s is a great person to compare notes with here.", first, topic, first),
	)
}

type echoProfile struct {
	Name string `json:"name"`
}

// firstName is the first word of the name that holds a letter, trimmed of
// emoji and punctuation, as a real model would address the person (and as
// insight.FirstName, which the engine checks answers against, reads it).
func (p echoProfile) firstName() string {
	for _, w := range strings.Fields(p.Name) {
		w = strings.TrimFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.IsMark(r) })
		if strings.ContainsFunc(w, unicode.IsLetter) {
			return w
		}
	}
	return "your match"
}
