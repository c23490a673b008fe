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

	// AttendeeType is the organiser's group for the attendee ("exhibitor",
	// "buyer"); "" = none. It matters only in an event with Rules.
	AttendeeType string
	// Languages the attendee speaks; none listed means any will do. Two
	// attendees who both list some and share none are never matched.
	Languages []string
	// Excluded are the UserIDs this attendee is never matched with, in
	// either direction: the people they declined, blocked or already met,
	// and those who did so to them (match_exclusions rows naming them on
	// either side).
	Excluded []string
}

// Rule lets attendees whose AttendeeType is ViewerType be shown attendees
// whose AttendeeType is CandidateType (a row of match_rules). An event
// with at least one rule shows each attendee only the types its rules
// allow for the attendee's own type.
type Rule struct {
	ViewerType, CandidateType string
}
