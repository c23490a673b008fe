package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/eventmatch/matchmaker/internal/cli"
	"github.com/eventmatch/matchmaker/store"
)

// Everything here is pure: a command parses and checks its input before it
// reads the environment or connects to anything, so a refused command
// changes nothing and says why. What is refused here is a usage error
// (exit 2): flag values through their pflag.Value, arguments through the
// commands' cobra.PositionalArgs.

// intBetween is an int flag that must lie in [lo, hi].
type intBetween struct {
	p      *int
	lo, hi int
}

func newIntBetween(p *int, value, lo, hi int) *intBetween {
	*p = value
	return &intBetween{p: p, lo: lo, hi: hi}
}

func (v *intBetween) String() string { return strconv.Itoa(*v.p) }
func (v *intBetween) Type() string   { return "int" }

func (v *intBetween) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < v.lo || n > v.hi {
		return fmt.Errorf("want a whole number from %d to %d", v.lo, v.hi)
	}
	*v.p = n
	return nil
}

// durationBetween is a duration flag that must lie in [lo, hi].
type durationBetween struct {
	p      *time.Duration
	lo, hi time.Duration
}

func newDurationBetween(p *time.Duration, value, lo, hi time.Duration) *durationBetween {
	*p = value
	return &durationBetween{p: p, lo: lo, hi: hi}
}

func (v *durationBetween) String() string { return fmtDuration(*v.p) }
func (v *durationBetween) Type() string   { return "duration" }

func (v *durationBetween) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < v.lo || d > v.hi {
		return fmt.Errorf("want a duration from %s to %s, such as 90s, 30m or 2h", fmtDuration(v.lo), fmtDuration(v.hi))
	}
	*v.p = d
	return nil
}

// fmtDuration prints 24h rather than 24h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// noArguments refuses positional arguments for a command that takes
// none; hint says where they belong instead.
func noArguments(hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return fmt.Errorf("%s takes no arguments%s, got %q", cmd.Name(), hint, strings.Join(args, " "))
	}
}

// oneEvent checks a command's one event argument; see checkEventRef.
func oneEvent(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes one event code or uuid, got %d arguments", cmd.Name(), len(args))
	}
	_, err := checkEventRef(args[0])
	return err
}

// atMostOneEvent checks status's optional event argument.
func atMostOneEvent(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("%s takes at most one event code or uuid, got %d arguments", cmd.Name(), len(args))
	}
	if len(args) == 1 {
		_, err := checkEventRef(args[0])
		return err
	}
	return nil
}

// eventOrAll checks `<event>` or `--all`, the shape of pause, resume and
// rematch; *all is the --all flag.
func eventOrAll(all *bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case *all && len(args) > 0:
			return fmt.Errorf("%s takes an event or --all, not both", cmd.Name())
		case *all:
			return nil
		}
		return oneEvent(cmd, args)
	}
}

// maxEventRefChars bounds an event argument: codes are the web app's, so
// anything printable is looked up, but not a pasted page of text.
const maxEventRefChars = 200

var almostUUID = regexp.MustCompile(`^[0-9a-fA-F-]{20,}$`)

// checkEventRef checks an event code or UUID given as an argument and
// returns it trimmed, as store.FindEvent looks it up.
func checkEventRef(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	switch {
	case ref == "":
		return "", errors.New("the event code or uuid must not be blank")
	case utf8.RuneCountInString(ref) > maxEventRefChars:
		return "", fmt.Errorf("the event code or uuid is too long: at most %d characters, got %d",
			maxEventRefChars, utf8.RuneCountInString(ref))
	case !utf8.ValidString(ref) || strings.ContainsFunc(ref, unicode.IsControl):
		return "", fmt.Errorf("the event code or uuid %q contains a control character or invalid UTF-8", ref)
	case looksLikeBadUUID(ref):
		return "", fmt.Errorf("%q is not a valid event UUID", ref)
	}
	return ref, nil
}

func looksLikeBadUUID(s string) bool {
	return almostUUID.MatchString(s) && !store.LooksLikeUUID(s) && strings.Contains(s, "-")
}

// maxNewCodeChars bounds the code of an event the starter creates.
const maxNewCodeChars = 64

// checkNewEventCode checks the code of an event load-demo creates: the
// starter must be able to name it afterwards, in a shell and in URLs.
func checkNewEventCode(code string) error {
	n := utf8.RuneCountInString(code)
	switch {
	case strings.TrimSpace(code) == "":
		return errors.New("--code must not be blank")
	case n > maxNewCodeChars:
		return fmt.Errorf("--code must be at most %d characters, got %d", maxNewCodeChars, n)
	case strings.ContainsFunc(code, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.", r)
	}):
		return fmt.Errorf("--code may contain only letters, digits, '-', '_' and '.', got %q", code)
	case !unicode.IsLetter([]rune(code)[0]) && !unicode.IsDigit([]rune(code)[0]):
		return fmt.Errorf("--code must start with a letter or digit, got %q", code)
	case store.LooksLikeUUID(code) || looksLikeBadUUID(code):
		return fmt.Errorf("--code must not look like a UUID (it would be taken for an event id), got %q", code)
	}
	return nil
}

// clip keeps text from the database or a workflow printable on one line of
// at most limit characters.
func clip(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = cli.OneLine(s)
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit-1]) + "…"
	}
	return s
}

// maxRoleBytes is PostgreSQL's limit on a name; a longer one would be cut
// short by the server and name another role.
const maxRoleBytes = 63

// oneRole checks a command's one role argument. Any name PostgreSQL
// allows is accepted (it is always quoted); the role must exist, which the
// command checks once connected.
func oneRole(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes one role name, got %d arguments", cmd.Name(), len(args))
	}
	role := args[0]
	switch {
	case strings.TrimSpace(role) == "":
		return errors.New("the role name must not be blank")
	case !utf8.ValidString(role) || strings.ContainsFunc(role, unicode.IsControl):
		return fmt.Errorf("the role name %q contains a control character or invalid UTF-8", role)
	case len(role) > maxRoleBytes:
		return fmt.Errorf("the role name is too long: PostgreSQL names are at most %d bytes, got %d", maxRoleBytes, len(role))
	}
	return nil
}
