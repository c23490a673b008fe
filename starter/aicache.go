package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/internal/cli"
	"github.com/eventmatch/matchmaker/store"
)

func (a *app) aiCacheCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ai-cache",
		Short: "Manage the cache of AI insights (see clear)",
		Long: `The AI insights cache holds the model's answers by the content of the two
profiles (a hash of what the prompt sends), the model and the prompt
version, across events: the same two profiles meeting again, in this event
or another, cost no model call.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return cli.Usagef("ai-cache needs a command: clear") },
	}
	cmd.AddCommand(a.aiCacheClearCommand())
	return cmd
}

func (a *app) aiCacheClearCommand() *cobra.Command {
	var (
		event string
		all   bool
	)
	cmd := withOutput(&cobra.Command{
		Use:   "clear --event <event> | --all",
		Short: "Delete cached AI insights: those of one event's members, or all",
		Long: `Delete cached AI insights, so that the model is asked again.

--event deletes the cached answers for every pair among the event's members
as their profiles read now, for every model and prompt version: the pairs
listed now and any pair of them listed before. Answers for a profile as it
was before an edit are not found this way (no current pair uses them); the
cache is shared across events, so the same two profiles meeting in another
event lose their answer too. --all deletes the whole cache.

The insights already written on matches stay; the pairs are asked again the
next time they are listed (starter rematch lists them all again). It needs
DELETE on matchmaking_insight_cache, which the role that migrated has and
the worker's role (grant-worker) has not.`,
		Args: eventFlagOrAll(&event, &all),
	}, func(ctx context.Context, _ []string, f outputFormat) error {
		return a.clearAICache(ctx, event, f)
	})
	cmd.Flags().StringVar(&event, "event", "", "the event (code or uuid) whose members' pairs to clear")
	cmd.Flags().BoolVar(&all, "all", false, "clear the whole cache")
	return cmd
}

// eventFlagOrAll checks `--event <event>` or `--all`, and no argument.
func eventFlagOrAll(event *string, all *bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		hasEvent := cmd.Flags().Changed("event")
		name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		switch {
		case len(args) > 0:
			return fmt.Errorf("%s takes no arguments (name the event with --event), got %q", name, strings.Join(args, " "))
		case *all && hasEvent:
			return fmt.Errorf("%s takes --event or --all, not both", name)
		case *all:
			return nil
		case !hasEvent:
			return fmt.Errorf("%s needs --event <event> or --all", name)
		}
		_, err := checkEventRef(*event)
		return err
	}
}

// aiCacheClearResult is what ai-cache clear deleted.
type aiCacheClearResult struct {
	// Event is the event cleared, nil for --all.
	Event *eventJSON `json:"event,omitempty"`
	// Profiles is how many current member profiles the event's pairs were
	// formed from (--event only).
	Profiles int   `json:"profiles,omitempty"`
	Deleted  int64 `json:"deleted"`
}

func (r aiCacheClearResult) writeText(w io.Writer) error {
	if r.Event == nil {
		_, err := fmt.Fprintf(w, "deleted %s: the whole cache\n", plural(int(r.Deleted), "cached AI insight", "cached AI insights"))
		return err
	}
	_, err := fmt.Fprintf(w, "deleted %s of event %s (%s): pairs among its %s as they read now\n",
		plural(int(r.Deleted), "cached AI insight", "cached AI insights"), r.Event.Code, r.Event.ID,
		plural(r.Profiles, "member's profile", "members' profiles"))
	return err
}

// clearAICache deletes the cached answers of the pairs among the event's
// members' current profiles, or with no event the whole cache.
func (a *app) clearAICache(ctx context.Context, ref string, format outputFormat) error {
	s, err := a.openSession(ctx, false)
	if err != nil {
		return err
	}
	defer s.close()
	var res aiCacheClearResult
	if ref == "" {
		res.Deleted, err = s.st.ClearInsightCache(ctx)
	} else {
		ev, ferr := findEvent(ctx, s.st, ref)
		if ferr != nil {
			return ferr
		}
		res.Event = &eventJSON{ID: ev.ID, Code: ev.Code}
		profiles, perr := s.st.EventProfiles(ctx, ev.ID)
		if perr != nil {
			return perr
		}
		keys := make([]string, len(profiles))
		for i, p := range profiles {
			keys[i] = activities.ProfileCacheKey(p)
		}
		res.Profiles = len(profiles)
		res.Deleted, err = s.st.ClearCachedInsightsAmong(ctx, keys)
	}
	if store.IsInsufficientPrivilege(err) {
		return errors.New("this role may not delete from matchmaking_insight_cache (the worker's role may only read and add): " +
			"run ai-cache clear as the role that migrated, e.g. with --database-url")
	}
	if err != nil {
		return err
	}
	return a.print(format, res)
}
