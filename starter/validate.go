package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eventmatch/matchmaker/store"
)

// Everything here is pure: a command parses and checks its input before it
// reads the environment or connects to anything, so a refused command
// changes nothing and says why in one line.

// flagSet is a command's flags together with the bounds of its numeric
// flags and any other check the command adds; parse refuses input that
// fails one of them.
type flagSet struct {
	*flag.FlagSet
	// want says what a flag's value must be, for parse errors.
	want   map[string]string
	checks []func() error
}

func newFlagSet(cmd string) *flagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, want: map[string]string{}}
}

// intBetween defines an int flag that must lie in [lo, hi].
func (f *flagSet) intBetween(name string, value, lo, hi int, usage string) *int {
	p := f.Int(name, value, usage)
	f.want[name] = fmt.Sprintf("a whole number from %d to %d", lo, hi)
	f.check(func() error { return checkIntFlag(name, *p, lo, hi) })
	return p
}

// durationBetween defines a duration flag that must lie in [lo, hi].
func (f *flagSet) durationBetween(name string, value, lo, hi time.Duration, usage string) *time.Duration {
	p := f.Duration(name, value, usage)
	f.want[name] = fmt.Sprintf("a duration from %s to %s, such as 90s, 30m or 2h", fmtDuration(lo), fmtDuration(hi))
	f.check(func() error { return checkDurationFlag(name, *p, lo, hi) })
	return p
}

// int64Any defines an int64 flag for which every 64-bit value is valid.
func (f *flagSet) int64Any(name string, value int64, usage string) *int64 {
	f.want[name] = "a whole number"
	return f.Int64(name, value, usage)
}

// check adds a check that runs after the flags are parsed.
func (f *flagSet) check(fn func() error) { f.checks = append(f.checks, fn) }

// isSet reports whether the flag was given on the command line.
func (f *flagSet) isSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// parse parses args, letting flags come before or after positional
// arguments (`enable demo --wait` as well as `enable --wait demo`), and
// runs the checks. It returns the positional arguments.
func (f *flagSet) parse(args []string) ([]string, error) {
	var positional []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, f.plainError(err)
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	for _, c := range f.checks {
		if err := c(); err != nil {
			return nil, err
		}
	}
	return positional, nil
}

var (
	invalidValue  = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-([^\s:]+): `)
	needsArgument = regexp.MustCompile(`^flag needs an argument: -(\S+)$`)
	notDefined    = regexp.MustCompile(`^flag provided but not defined: -\S+$`)
)

// plainError rewords the flag package's errors so they say what was
// wanted, keeping the flag package's own words that scripts may grep for.
func (f *flagSet) plainError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	msg := err.Error()
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s: invalid value %s for --%s: want %s", f.Name(), m[1], m[2], f.wanted(m[2]))
	}
	if m := needsArgument.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s: flag needs an argument: --%s takes %s", f.Name(), m[1], f.wanted(m[1]))
	}
	if notDefined.MatchString(msg) {
		var names []string
		f.VisitAll(func(fl *flag.Flag) { names = append(names, "--"+fl.Name) })
		if len(names) == 0 {
			return fmt.Errorf("%s: %s (%s takes no flags)", f.Name(), msg, f.Name())
		}
		return fmt.Errorf("%s: %s (%s takes %s)", f.Name(), msg, f.Name(), strings.Join(names, ", "))
	}
	return fmt.Errorf("%s: %w", f.Name(), err)
}

func (f *flagSet) wanted(name string) string {
	if w, ok := f.want[name]; ok {
		return w
	}
	if fl := f.Lookup(name); fl != nil {
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			return "true or false"
		}
	}
	return "a value"
}

func checkIntFlag(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("--%s must be between %d and %d, got %d", name, lo, hi, v)
	}
	return nil
}

func checkDurationFlag(name string, v, lo, hi time.Duration) error {
	if v < lo || v > hi {
		return fmt.Errorf("--%s must be between %s and %s, got %s", name, fmtDuration(lo), fmtDuration(hi), fmtDuration(v))
	}
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

// noArguments refuses positional arguments for a command that takes none.
func noArguments(cmd string, positional []string, hint string) error {
	if len(positional) == 0 {
		return nil
	}
	return fmt.Errorf("%s takes no arguments%s, got %q", cmd, hint, strings.Join(positional, " "))
}

// exactlyOneEvent checks a command's one event argument; see checkEventRef.
func exactlyOneEvent(cmd string, positional []string) (string, error) {
	if len(positional) != 1 {
		return "", fmt.Errorf("%s takes one event code or uuid, got %d arguments", cmd, len(positional))
	}
	return checkEventRef(positional[0])
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
	s = strings.TrimSpace(whitespace.ReplaceAllString(s, " "))
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit-1]) + "…"
	}
	return s
}

// maxRoleBytes is PostgreSQL's limit on a name; a longer one would be cut
// short by the server and name another role.
const maxRoleBytes = 63

// exactlyOneRole checks a command's one role argument. Any name PostgreSQL
// allows is accepted (it is always quoted); the role must exist, which the
// command checks once connected.
func exactlyOneRole(cmd string, positional []string) (string, error) {
	if len(positional) != 1 {
		return "", fmt.Errorf("%s takes one role name, got %d arguments", cmd, len(positional))
	}
	role := positional[0]
	switch {
	case strings.TrimSpace(role) == "":
		return "", errors.New("the role name must not be blank")
	case !utf8.ValidString(role) || strings.ContainsFunc(role, unicode.IsControl):
		return "", fmt.Errorf("the role name %q contains a control character or invalid UTF-8", role)
	case len(role) > maxRoleBytes:
		return "", fmt.Errorf("the role name is too long: PostgreSQL names are at most %d bytes, got %d", maxRoleBytes, len(role))
	}
	return role, nil
}
