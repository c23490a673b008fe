package demodata

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := Generate(42, 300), Generate(42, 300)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed and size produced different members")
	}
	if reflect.DeepEqual(a[:10], Generate(43, 10)) {
		t.Fatal("different seeds produced the same members")
	}
}

func TestGenerateIsPrefixStable(t *testing.T) {
	all := Generate(7, 250)
	for _, k := range []int{0, 1, 17, 200, 250} {
		if !reflect.DeepEqual(all[:k], Generate(7, k)) {
			t.Fatalf("Generate(7, 250)[:%d] != Generate(7, %d)", k, k)
		}
	}
}

func TestGenerateLooksRealistic(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	members := Generate(1, 2000)
	seenIDs := map[string]bool{}
	perCompany := map[string]int{}
	for _, m := range members {
		if !uuid.MatchString(m.UserID) {
			t.Fatalf("UserID %q is not a lowercase UUID v4", m.UserID)
		}
		if seenIDs[m.UserID] {
			t.Fatalf("duplicate UserID %q", m.UserID)
		}
		seenIDs[m.UserID] = true
		perCompany[m.Company]++
		if n := len(m.Interests); n < 3 || n > 7 {
			t.Fatalf("%s has %d interests", m.DisplayName, n)
		}
		if n := len(m.LookingFor); n < 1 || n > 4 {
			t.Fatalf("%s looks for %d things", m.DisplayName, n)
		}
		if n := len(m.Offering); n < 1 || n > 4 {
			t.Fatalf("%s offers %d things", m.DisplayName, n)
		}
		if m.DisplayName == "" || m.Industry == "" || m.JobTitle == "" || m.Bio == "" {
			t.Fatalf("incomplete member %+v", m)
		}
	}
	if perCompany[""] == 0 {
		t.Error("nobody without a company")
	}
	bigShared, smallShared := 0, 0
	for company, count := range perCompany {
		switch {
		case company == "":
		case count >= 50:
			bigShared++
		case count >= 2:
			smallShared++
		}
	}
	if bigShared < 3 || smallShared < 50 {
		t.Errorf("company sizes not skewed enough: %d big, %d small shared", bigShared, smallShared)
	}
}

func TestGeneratePlantedGroupsBelongTogether(t *testing.T) {
	members, groups := GeneratePlanted(3, 1000)
	again, groupsAgain := GeneratePlanted(3, 1000)
	if !reflect.DeepEqual(members, again) || !reflect.DeepEqual(groups, groupsAgain) {
		t.Fatal("same seed and size planted different groups")
	}
	if len(groups) == 0 {
		t.Fatal("no groups planted")
	}
	planted, themes := 0, map[string]bool{}
	for g, group := range groups {
		if len(group) < 3 || len(group) > 5 {
			t.Fatalf("group %d has %d members, want 3 to 5", g, len(group))
		}
		planted += len(group)
		theme := members[group[0]].Interests[len(members[group[0]].Interests)-1]
		if themes[theme] {
			t.Fatalf("theme %q planted twice", theme)
		}
		themes[theme] = true
		for k, i := range group {
			m := members[i]
			if !slices.Contains(m.Interests, theme) || !strings.Contains(m.Bio, theme) {
				t.Fatalf("group %d member %d lacks the theme %q: %+v", g, k, theme, m)
			}
			next := members[group[(k+1)%len(group)]]
			if !slices.Contains(next.Offering, m.LookingFor[0]) {
				t.Fatalf("group %d: member %d looks for %q, which the next does not offer", g, k, m.LookingFor[0])
			}
		}
	}
	if want := int(1000 * PlantedShare); planted != want {
		t.Fatalf("%d members planted, want %d", planted, want)
	}
	for i, m := range members {
		for _, tag := range m.Interests {
			if themes[tag] && !slices.ContainsFunc(groups, func(g []int) bool { return slices.Contains(g, i) }) {
				t.Fatalf("member %d outside every group has the theme %q", i, tag)
			}
		}
	}
}
