package insight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// ErrRateLimited is matched (errors.Is) by every *RateLimitedError.
var ErrRateLimited = errors.New("insight: rate limited")

// RateLimitedError is a 429 that could not be waited out: its Retry-After
// did not fit in the context's deadline, or the attempts ran out.
type RateLimitedError struct {
	RetryAfter time.Duration // 0 when the server sent none
	Attempts   int
	Message    string // the server's message, with any key removed
}

func (e *RateLimitedError) Error() string {
	s := fmt.Sprintf("insight: rate limited (HTTP 429) after %d attempt(s)", e.Attempts)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %v", e.RetryAfter)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// PermanentError is an answer that retrying cannot fix: a bad request, a bad
// key, no access, an unknown model, or an exhausted quota. The caller should
// stop using the model for the batch.
type PermanentError struct {
	StatusCode int
	Type, Code string
	Message    string // the server's message, with any key removed
}

func (e *PermanentError) Error() string {
	s := fmt.Sprintf("insight: permanent error (HTTP %d", e.StatusCode)
	if e.Code != "" {
		s += ", " + e.Code
	}
	s += ")"
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// InvalidAnswerError is an answer that arrived but is unusable: not the
// expected JSON, or a text that fails validation. It is not retried.
type InvalidAnswerError struct {
	Field string // "for_first", "for_second", or "" for the whole answer
	// Rule is which check the answer failed, one of the Rule constants:
	// what an operator counts to see whether a model's rejected answers
	// are too long, miss the name, or are not JSON.
	Rule   string
	Reason string
}

// The rules an answer can break, as Classify's labels show them
// ("invalid_" + rule).
const (
	RuleEmpty        = "empty"        // no choices in the response
	RuleRefused      = "refused"      // the model refused
	RuleCutOff       = "cut_off"      // finish_reason length
	RuleJSON         = "json"         // not the expected JSON object
	RuleLength       = "length"       // a text too short or too long
	RuleFormat       = "format"       // more than one line, or markdown
	RuleContent      = "content"      // a URL, an email address or an ID
	RuleInstructions = "instructions" // talks about instructions
	RuleName         = "name"         // does not mention the person by first name
)

func (e *InvalidAnswerError) Error() string {
	if e.Field == "" {
		return "insight: invalid answer: " + e.Reason
	}
	return "insight: invalid answer: " + e.Field + ": " + e.Reason
}

// TransientError is a failure worth retrying (timeout, 5xx, dropped
// connection, malformed body) that persisted until the attempts ran out or
// the next backoff no longer fitted in the deadline.
type TransientError struct {
	Kind       string // "timeout" or "server_error"
	StatusCode int    // 0 when there was no HTTP answer
	Attempts   int
	Message    string
}

func (e *TransientError) Error() string {
	s := fmt.Sprintf("insight: %s after %d attempt(s)", strings.ReplaceAll(e.Kind, "_", " "), e.Attempts)
	if e.StatusCode != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// stopError is the context ending (deadline or cancellation); it unwraps to
// the context's error.
type stopError struct {
	msg string
	err error
}

func (e *stopError) Error() string { return e.msg }
func (e *stopError) Unwrap() error { return e.err }

// otherError is an unexpected failure that is not retried.
type otherError struct{ msg string }

func (e *otherError) Error() string { return e.msg }

// Classify returns a short reason label for an error returned by WritePair:
// "rate_limited", "timeout", "server_error", "invalid_" + the rule an answer
// broke (see InvalidAnswerError.Rule; "invalid_answer" when it names none),
// "permanent", "budget" (the context's deadline passed), "canceled" or
// "other"; "" for nil.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var (
		invalid   *InvalidAnswerError
		permanent *PermanentError
		transient *TransientError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &invalid) && invalid.Rule != "":
		return "invalid_" + invalid.Rule
	case errors.As(err, &invalid):
		return "invalid_answer"
	case errors.As(err, &permanent):
		return "permanent"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.As(err, &transient):
		return transient.Kind
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "budget"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	}
	return "other"
}

// secretLike matches OpenAI-style keys, including the masked form that
// OpenAI's own 401 message contains.
var secretLike = regexp.MustCompile(`\bsk-[A-Za-z0-9_*.\-]{6,}`)

// scrub removes the API key, anything shaped like a key, and line breaks
// from text that goes into an error, and caps its length.
func scrub(text, key string) string {
	if key != "" {
		text = strings.ReplaceAll(text, key, "[redacted]")
	}
	text = secretLike.ReplaceAllString(text, "sk-[redacted]")
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > 300 {
		text = string(r[:300]) + "…"
	}
	return text
}
