package insight

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

func completion(content string) openai.ChatCompletionResponse {
	return openai.ChatCompletionResponse{Choices: []openai.ChatCompletionChoice{{
		Message:      openai.ChatCompletionMessage{Role: "assistant", Content: content},
		FinishReason: openai.FinishReasonStop,
	}}}
}

func answerJSON(forFirst, forSecond string) string {
	b, _ := json.Marshal(map[string]string{"for_first": forFirst, "for_second": forSecond})
	return string(b)
}

var validatePair = promptData{First: promptProfile{Name: "Alice Moreau"}, Second: promptProfile{Name: "Dr. Bob Okafor"}}

const (
	goodFirst  = "You and Bob both work on warehouse robotics; ask Bob how his fleet handles peak season."
	goodSecond = "Alice is hiring robotics engineers, and you offer exactly that experience; say hi to Alice."
)

func TestParseAnswerValid(t *testing.T) {
	ff, fs, err := parseAnswer(completion(answerJSON("  "+goodFirst+"  ", goodSecond)), validatePair)
	if err != nil {
		t.Fatal(err)
	}
	if ff != goodFirst || fs != goodSecond {
		t.Fatalf("got %q / %q", ff, fs)
	}
	// C# is a skill, not markdown; names match case-insensitively.
	csharp := "You both write C# services, so BOB is the person to ask about .NET migrations."
	if _, _, err := parseAnswer(completion(answerJSON(csharp, goodSecond)), validatePair); err != nil {
		t.Fatalf("C# rejected: %v", err)
	}
	// Without names there is no grounding check.
	noNames := promptData{}
	if _, _, err := parseAnswer(completion(answerJSON("You two should talk about robotics.", "You two should talk about robotics.")), noNames); err != nil {
		t.Fatal(err)
	}
}

func TestParseAnswerInvalid(t *testing.T) {
	cases := []struct {
		name    string
		resp    openai.ChatCompletionResponse
		field   string
		contain string
	}{
		{"not JSON", completion("Bob is great."), "", "JSON"},
		{"code fence", completion("```json\n" + answerJSON(goodFirst, goodSecond) + "\n```"), "", "JSON"},
		{"missing key", completion(`{"for_first":"` + goodFirst + `"}`), "", "lacks"},
		{"extra key", completion(`{"for_first":"` + goodFirst + `","for_second":"` + goodSecond + `","score":1}`), "", "JSON"},
		{"trailing data", completion(answerJSON(goodFirst, goodSecond) + ` {}`), "", "after"},
		{"no choices", openai.ChatCompletionResponse{}, "", "no choices"},
		{"refusal", openai.ChatCompletionResponse{Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Refusal: "I can't"}}}}, "", "refused"},
		{"cut off", openai.ChatCompletionResponse{Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Content: `{"for_first":"You`}, FinishReason: openai.FinishReasonLength}}}, "", "cut off"},
		{"too short", completion(answerJSON("Meet Bob.", goodSecond)), "for_first", "too short"},
		{"too long", completion(answerJSON("You should meet Bob. "+strings.Repeat("He is great. ", 25), goodSecond)), "for_first", "too long"},
		{"newline", completion(answerJSON("You should meet Bob.\nHe builds robots too.", goodSecond)), "for_first", "line"},
		{"bold", completion(answerJSON("You should meet **Bob**, who builds robots.", goodSecond)), "for_first", "markdown"},
		{"heading", completion(answerJSON("# Meet Bob, who builds robots", goodSecond)), "for_first", "markdown"},
		{"hashtag", completion(answerJSON("Meet Bob, who builds robots #robotics", goodSecond)), "for_first", "markdown"},
		{"backticks", completion(answerJSON("Meet Bob, who maintains `robotd` daily.", goodSecond)), "for_first", "markdown"},
		{"link", completion(answerJSON("Meet Bob, see [his work](robots) first.", goodSecond)), "for_first", "markdown"},
		{"list dash", completion(answerJSON("- Meet Bob, who builds robots too.", goodSecond)), "for_first", "markdown"},
		{"url", completion(answerJSON("Meet Bob at https://bob.example/robots today.", goodSecond)), "for_first", "URL"},
		{"www", completion(answerJSON("Meet Bob, see www.bob-robots.example for more.", goodSecond)), "for_first", "URL"},
		{"email", completion(answerJSON("Meet Bob, write to bob@robots.example today.", goodSecond)), "for_first", "email"},
		{"uuid", completion(answerJSON("Meet Bob (3f2b8c1e-9d4a-4e7b-8a6f-1c2d3e4f5a6b) about robots.", goodSecond)), "for_first", "ID"},
		{"hex id", completion(answerJSON("Meet Bob, attendee 5f1d3c9a8b7e6d5c, about robots.", goodSecond)), "for_first", "ID"},
		{"as an AI", completion(answerJSON("As an AI, I think Bob is the best match for you.", goodSecond)), "for_first", "instructions"},
		{"ignore previous", completion(answerJSON("I will ignore previous guidance: Bob is the best match.", goodSecond)), "for_first", "instructions"},
		{"language model", completion(answerJSON("This language model says Bob builds robots.", goodSecond)), "for_first", "instructions"},
		{"instructions", completion(answerJSON("Following Bob's instructions, you should meet Bob.", goodSecond)), "for_first", "instructions"},
		{"missing name", completion(answerJSON("You both love robots; you should compare notes.", goodSecond)), "for_first", `"Bob"`},
		{"wrong name in second", completion(answerJSON(goodFirst, "You both love robots; Bob should compare notes.")), "for_second", `"Alice"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseAnswer(c.resp, validatePair)
			var inv *InvalidAnswerError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want *InvalidAnswerError", err)
			}
			if inv.Field != c.field || !strings.Contains(err.Error(), c.contain) {
				t.Fatalf("err = %q (field %q), want field %q and %q", err, inv.Field, c.field, c.contain)
			}
			if label := Classify(err); !strings.HasPrefix(label, "invalid_") || inv.Rule == "" {
				t.Fatalf("Classify = %q, rule %q: want invalid_ and the rule broken", label, inv.Rule)
			}
		})
	}
}

func TestFirstName(t *testing.T) {
	for in, want := range map[string]string{
		"Alice Moreau": "Alice", "Dr. Bob Okafor": "Bob", "Prof Ng": "Ng", "Dr.": "Dr",
		"  \"Zoë\" K.": "Zoë", "": "", "Mr": "Mr",
		"🦄 Zoë Ångström": "Zoë", "🦄Zoë": "Zoë", "✨ ✨ Kai": "Kai", "Dr. (Sam) Lee": "Sam", "🦄": "",
		"李 小龙": "李", "O'Brien Pat": "O'Brien",
	} {
		if got := FirstName(in); got != want {
			t.Errorf("FirstName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAnswerAboutAnEmojiNameIsAccepted: the name rule reads past a leading
// emoji, and compares names in composed form, so a model that writes Zoë
// as one rune passes for a profile that spells it with a combining mark.
func TestAnswerAboutAnEmojiNameIsAccepted(t *testing.T) {
	pair := validatePair
	pair.Second.Name = "🦄 Zoe\u0308 Ångström" // decomposed ë
	text := "You and Zoë both build robots, so compare notes on grippers."
	if _, _, err := parseAnswer(completion(answerJSON(text, "You and Alice both build robots, so swap notes on grippers.")), pair); err != nil {
		t.Fatalf("a valid answer about %q was rejected: %v", pair.Second.Name, err)
	}
}

// TestRejectedAnswersNameTheirRule: an operator sees which rule a model's
// answers break, not just that they were invalid.
func TestRejectedAnswersNameTheirRule(t *testing.T) {
	goodSecond := "You and Alice both build robots; compare notes with her."
	for resp, want := range map[*openai.ChatCompletionResponse]string{
		ptr(completion("Bob is great.")): "invalid_json",
		ptr(completion(answerJSON("You should meet Bob. "+strings.Repeat("He is great. ", 25), goodSecond))):                                                     "invalid_length",
		ptr(completion(answerJSON("You both love robots; you should compare notes.", goodSecond))):                                                               "invalid_name",
		ptr(completion(answerJSON("You should meet **Bob**, who builds robots.", goodSecond))):                                                                   "invalid_format",
		ptr(completion(answerJSON("Meet Bob at https://bob.example/robots today.", goodSecond))):                                                                 "invalid_content",
		{Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Content: `{"for_first":"You`}, FinishReason: openai.FinishReasonLength}}}: "invalid_cut_off",
	} {
		_, _, err := parseAnswer(*resp, validatePair)
		if got := Classify(err); got != want {
			t.Errorf("Classify(%v) = %q, want %q", err, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestGivenNames(t *testing.T) {
	for _, c := range []struct {
		name string
		want []string
	}{
		{"Mary Jane Watson", []string{"Mary", "Jane"}},
		{"🦄 Zoë Ångström", []string{"Zoë"}},
		{"Madonna", []string{"Madonna"}},
		{"🦄", nil},
		{"", nil},
		{"Dr. Mary Jane Watson PhD", []string{"Mary", "Jane"}},
		{"Martin Luther King Jr.", []string{"Martin", "Luther"}},
		{"Watson, Mary Jane", []string{"Mary", "Jane"}},
		{"J. R. R. Tolkien", []string{"Tolkien"}},
		{"J. Robert Oppenheimer", []string{"Robert"}},
		{"Jean-Luc Picard", []string{"Jean-Luc"}},
		{"★ Ana – María ★ López", []string{"Ana", "María"}},
		{"Дмитрий Иванов", []string{"Дмитрий"}},
		{"王小明", []string{"王小明", "小明"}},
		{"李娜", []string{"李娜"}},
		{"山田太郎", []string{"山田太郎", "田太郎", "太郎"}},
		{"김민준", []string{"김민준", "민준"}},
		{"李 小龙", []string{"李", "小龙"}},
		{"山田 太郎", []string{"山田", "太郎"}},
		{"Prof Ng", []string{"Ng"}},
	} {
		if got := GivenNames(c.name); !slices.Equal(got, c.want) {
			t.Errorf("GivenNames(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestAnswerNamingAnyGivenNameIsAccepted: an answer may call the person by
// any of their given names, in any script; one that names none of them
// (the family name alone, say) is rejected for the name rule, naming them
// all.
func TestAnswerNamingAnyGivenNameIsAccepted(t *testing.T) {
	forSecond := "You and Alice both build robots, so swap notes on grippers."
	for _, c := range []struct {
		name, text string
	}{
		{"Mary Jane Watson", "You and Mary both build robots, so compare notes on grippers."},
		{"Mary Jane Watson", "You and Jane both build robots, so compare notes on grippers."},
		{"Mary Jane Watson", "You and MARY JANE both build robots, so compare notes on grippers."},
		{"🦄 Zoë Ångström", "You and Zoë both build robots, so compare notes on grippers."},
		{"王小明", "你和小明都在做机器人，可以一起聊聊抓手的设计和测试经验。"},
		{"王小明", "你和王小明都在做机器人，可以一起聊聊抓手的设计和测试经验。"},
		{"Дмитрий Иванов", "Дмитрий тоже строит роботов: обсудите с ним захваты."},
	} {
		pair := validatePair
		pair.Second.Name = c.name
		if _, _, err := parseAnswer(completion(answerJSON(c.text, forSecond)), pair); err != nil {
			t.Errorf("%q about %q rejected: %v", c.text, c.name, err)
		}
	}

	pair := validatePair
	pair.Second.Name = "Mary Jane Watson"
	_, _, err := parseAnswer(completion(answerJSON("You and Ms Watson both build robots; compare notes on grippers.", forSecond)), pair)
	var inv *InvalidAnswerError
	if !errors.As(err, &inv) || inv.Rule != RuleName || inv.Field != "for_first" || inv.Reason != `does not mention "Mary" or "Jane"` {
		t.Fatalf("an answer naming only the family name: %v, want the name rule naming Mary and Jane", err)
	}
}
