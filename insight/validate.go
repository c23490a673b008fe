package insight

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"
	"golang.org/x/text/unicode/norm"
)

const (
	minInsightChars = 20
	maxInsightChars = 300
)

// tells are phrases that show the model followed, or talked about,
// instructions instead of writing an insight.
var tells = regexp.MustCompile(`(?i)ignore\s+(all\s+)?(the\s+)?(previous|prior|above)|\bas\s+an\s+ai\b|language\s+model|\binstructions?\b|system\s+prompt|</?profiles`)

// parseAnswer extracts and validates the two texts of a completion.
func parseAnswer(resp openai.ChatCompletionResponse, d promptData) (forFirst, forSecond string, err error) {
	if len(resp.Choices) == 0 {
		return "", "", &InvalidAnswerError{Rule: RuleEmpty, Reason: "no choices in the response"}
	}
	ch := resp.Choices[0]
	if ch.Message.Refusal != "" {
		return "", "", &InvalidAnswerError{Rule: RuleRefused, Reason: "the model refused"}
	}
	if ch.FinishReason == openai.FinishReasonLength {
		return "", "", &InvalidAnswerError{Rule: RuleCutOff, Reason: "the answer was cut off (finish_reason length)"}
	}
	var a struct {
		ForFirst  *string `json:"for_first"`
		ForSecond *string `json:"for_second"`
	}
	dec := json.NewDecoder(strings.NewReader(ch.Message.Content))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return "", "", &InvalidAnswerError{Rule: RuleJSON, Reason: "content is not the expected JSON object: " + shortJSONError(err)}
	}
	if dec.More() || trailingData(dec) {
		return "", "", &InvalidAnswerError{Rule: RuleJSON, Reason: "content has data after the JSON object"}
	}
	if a.ForFirst == nil || a.ForSecond == nil {
		return "", "", &InvalidAnswerError{Rule: RuleJSON, Reason: "content lacks for_first or for_second"}
	}
	forFirst, forSecond = strings.TrimSpace(*a.ForFirst), strings.TrimSpace(*a.ForSecond)
	if rule, reason := checkText(forFirst, GivenNames(d.Second.Name)); reason != "" {
		return "", "", &InvalidAnswerError{Field: "for_first", Rule: rule, Reason: reason}
	}
	if rule, reason := checkText(forSecond, GivenNames(d.First.Name)); reason != "" {
		return "", "", &InvalidAnswerError{Field: "for_second", Rule: rule, Reason: reason}
	}
	return forFirst, forSecond, nil
}

func trailingData(dec *json.Decoder) bool {
	var rest bytes.Buffer
	_, _ = rest.ReadFrom(dec.Buffered())
	return strings.TrimSpace(rest.String()) != ""
}

func shortJSONError(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// checkText returns which rule an insight text breaks and why, or "" when
// it is fine. One of names (GivenNames), when there are any, must appear
// in the text, compared case-insensitively in Unicode's composed form (a
// model writes "Zoë" as one rune where the profile may hold e and a
// combining diaeresis).
func checkText(text string, names []string) (rule, reason string) {
	n := utf8.RuneCountInString(text)
	switch {
	case n < minInsightChars:
		return RuleLength, fmt.Sprintf("too short (%d characters, minimum %d)", n, minInsightChars)
	case n > maxInsightChars:
		return RuleLength, fmt.Sprintf("too long (%d characters, maximum %d)", n, maxInsightChars)
	case strings.ContainsAny(text, "\n\r\u2028\u2029"):
		return RuleFormat, "more than one line"
	case hasMarkdown(text):
		return RuleFormat, "contains markdown"
	case urlRe.MatchString(text) || strings.Contains(text, "://"):
		return RuleContent, "contains a URL"
	case emailRe.MatchString(text):
		return RuleContent, "contains an email address"
	case uuidRe.MatchString(text) || hasHexID(text):
		return RuleContent, "contains an ID"
	case tells.MatchString(text):
		return RuleInstructions, "reads as following or discussing instructions"
	case len(names) > 0 && !mentionsAny(text, names):
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = strconv.Quote(n)
		}
		return RuleName, "does not mention " + strings.Join(quoted, " or ")
	}
	return "", ""
}

// mentionsAny reports whether text contains one of names.
func mentionsAny(text string, names []string) bool {
	folded := foldName(text)
	return slices.ContainsFunc(names, func(n string) bool { return strings.Contains(folded, foldName(n)) })
}

// foldName is s in Unicode's composed form and lower case, for comparing
// names.
func foldName(s string) string {
	return strings.ToLower(norm.NFC.String(s))
}

// hasMarkdown spots markdown: '*', backticks, links, a leading list dash or
// bullet, and '#' as a heading or hashtag. A '#' right after a letter is
// allowed, so C# and F# survive.
func hasMarkdown(text string) bool {
	if strings.ContainsAny(text, "*`") || strings.Contains(text, "](") ||
		strings.HasPrefix(text, "-") || strings.HasPrefix(text, "•") {
		return true
	}
	prev := ' '
	for _, r := range text {
		if r == '#' && !unicode.IsLetter(prev) {
			return true
		}
		prev = r
	}
	return false
}

func hasHexID(text string) bool {
	for _, m := range hexIDRe.FindAllString(text, -1) {
		if isHexID(m) {
			return true
		}
	}
	return false
}
