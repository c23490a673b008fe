package matching_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/matching"
)

func reasonsPool() *matching.Pool {
	return matching.NewPool([]attendee.Profile{
		{
			UserID: userID(0), DisplayName: "Alex", Industry: "Fintech ",
			Interests:  []string{"  Machine   Learning", "Climate Tech", "AI", "ai"},
			LookingFor: []string{"Fundraising", "hiring"},
			Offering:   []string{"Mentoring"},
			Bio:        "Building climate risk models for insurers.",
		},
		{
			UserID: userID(1), DisplayName: "Dana", Industry: "fintech",
			Interests:  []string{"machine learning", "ai", "robotics"},
			LookingFor: []string{"MENTORING", "design feedback"},
			Offering:   []string{"fundraising"},
			Bio:        "I model climate risk at scale for insurers and banks.",
		},
		{UserID: userID(2), DisplayName: "Sam"},
	})
}

func TestReasonsUseViewersSpellingSorted(t *testing.T) {
	pool := reasonsPool()
	got := pool.Reasons(0, 1)
	want := matching.Reasons{
		SharedInterests: []string{"AI", "Machine Learning"},
		TheyOffer:       []string{"Fundraising"},
		YouOffer:        []string{"Mentoring"},
		SameIndustry:    "Fintech",
		SharedBioTerms:  []string{"climate", "insurers", "risk"},
		Score:           pool.Score(0, 1),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Reasons(0,1) = %+v\nwant %+v", got, want)
	}

	reverse := pool.Reasons(1, 0)
	if !reflect.DeepEqual(reverse.SharedInterests, []string{"ai", "machine learning"}) ||
		!reflect.DeepEqual(reverse.TheyOffer, []string{"MENTORING"}) ||
		!reflect.DeepEqual(reverse.YouOffer, []string{"fundraising"}) ||
		reverse.SameIndustry != "fintech" || reverse.Score != got.Score {
		t.Fatalf("Reasons(1,0) = %+v", reverse)
	}
}

func TestReasonsEmptyMarshalsToScoreOnly(t *testing.T) {
	r := reasonsPool().Reasons(0, 2)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"score":0}` {
		t.Fatalf("empty reasons marshal to %s", data)
	}
}

func TestFallbackInsightWording(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    matching.Reasons
		want string
	}{
		{"Dana", matching.Reasons{
			SharedInterests: []string{"climate tech", "AI"},
			TheyOffer:       []string{"fundraising advice"},
			YouOffer:        []string{"mentoring"},
		}, "You and Dana both care about climate tech and AI. Dana offers fundraising advice, which you are looking for, and you can offer mentoring in return."},
		{"Dana", matching.Reasons{SameIndustry: "Fintech", SharedInterests: []string{"payments"}},
			"You and Dana both work in Fintech and care about payments."},
		{"Dana", matching.Reasons{SameIndustry: "Fintech", YouOffer: []string{"hiring", "design feedback"}},
			"You and Dana both work in Fintech. Dana is looking for hiring and design feedback, which you can offer."},
		{"Dana", matching.Reasons{SharedBioTerms: []string{"insurers", "risk"}, TheyOffer: []string{"customers"}},
			"You and Dana both mention insurers and risk in your bios. Dana offers customers, which you are looking for."},
		{"Dana", matching.Reasons{}, "Dana is another attendee worth meeting here."},
		{"  ", matching.Reasons{}, "This person is another attendee worth meeting here."},
		{"", matching.Reasons{TheyOffer: []string{"hiring"}}, "This person offers hiring, which you are looking for."},
		{"Dana", matching.Reasons{SharedInterests: []string{"a", "b", "c", "d", "e"}},
			"You and Dana both care about a, b and c."},
	} {
		if got := matching.FallbackInsight(tc.name, tc.r); got != tc.want {
			t.Errorf("FallbackInsight(%q, %+v)\n got %q\nwant %q", tc.name, tc.r, got, tc.want)
		}
	}
}

func TestFallbackInsightStaysShort(t *testing.T) {
	long := strings.Repeat("very long tag ", 8)
	many := []string{long + "1", long + "2", long + "3", long + "4"}
	for _, tc := range []struct {
		name string
		r    matching.Reasons
	}{
		{"Dana", matching.Reasons{SharedInterests: many, TheyOffer: many, YouOffer: many, SameIndustry: "Fintech"}},
		{strings.Repeat("Ö", 400), matching.Reasons{SharedInterests: many}},
		{strings.Repeat("Dana ", 100), matching.Reasons{}},
	} {
		got := matching.FallbackInsight(tc.name, tc.r)
		if n := utf8.RuneCountInString(got); n > 280 || n == 0 || !utf8.ValidString(got) {
			t.Errorf("insight of %d characters (valid UTF-8: %v): %q", n, utf8.ValidString(got), got)
		}
	}

	// Realistic reasons of a demo pool always fit without cutting.
	pool := matching.NewPool(demoProfiles(4, 200))
	for v := range pool.Len() {
		for _, e := range pool.TopN(v, 5) {
			got := matching.FallbackInsight(pool.Profile(e.Other).DisplayName, pool.Reasons(v, e.Other))
			if utf8.RuneCountInString(got) > 280 || strings.HasSuffix(got, "…") {
				t.Fatalf("demo insight too long: %q", got)
			}
		}
	}
}
