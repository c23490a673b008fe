package matching

import (
	"reflect"
	"testing"
)

func TestNormalizeTag(t *testing.T) {
	for in, want := range map[string]string{
		"  Machine   Learning": "machine learning",
		"machine learning":     "machine learning",
		"AI":                   "ai",
		"\tClimate\nTech ":     "climate tech",
		"   ":                  "",
		"":                     "",
		"Ünïcode  Tag":         "ünïcode tag",
	} {
		if got := NormalizeTag(in); got != want {
			t.Errorf("NormalizeTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTagKeysDeduplicatesAndDropsBlanks(t *testing.T) {
	got := tagKeys([]string{"AI", " ai ", "", "  ", "Machine Learning", "machine  learning"})
	want := []string{"ai", "machine learning"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tagKeys = %q, want %q", got, want)
	}
}

func TestBioTerms(t *testing.T) {
	got := bioTerms("I'm passionate about Climate-Tech, AI and climate risk models; 10 years in the field (2015–2025)!")
	want := []string{"climate", "tech", "risk", "models", "field"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("bioTerms = %q, want %q", got, want)
	}
	if terms := bioTerms(""); len(terms) != 0 {
		t.Fatalf("bioTerms(\"\") = %q", terms)
	}
}

func TestBioSignatureCountsDistinctBits(t *testing.T) {
	signature := make([]uint64, bioSignatureWords)
	if got := setBioSignature(signature, []string{"climate", "risk", "insurers"}); got != 3 {
		t.Fatalf("set %d bits for 3 distinct terms", got)
	}
	// Setting the same terms again adds nothing: the count is of bits.
	if got := setBioSignature(signature, []string{"climate"}); got != 0 {
		t.Fatalf("re-adding a term set %d new bits", got)
	}
}
