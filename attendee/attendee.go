// Package attendee defines the one description of an event attendee that
// the store reads, scoring scores, insights are written from and the demo
// data generates. It sits below every other package of the engine and
// imports none of them.
package attendee

// Profile is what the engine knows about one attendee: the columns of
// all_events_members it reads, with NULL read as "" or an empty list.
// Reading a Profile from the database also bounds its text (see
// store.Snapshot); a Profile built in memory is taken as it is, and scoring
// and prompting apply the caps of package profiletext themselves.
type Profile struct {
	UserID      string // canonical lowercase UUID text; ties between equal scores are broken by it
	DisplayName string
	Company     string // "" = none
	JobTitle    string
	Industry    string
	Interests   []string
	LookingFor  []string
	Offering    []string
	Bio         string
}
