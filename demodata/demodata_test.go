package demodata

import (
	"reflect"
	"regexp"
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
