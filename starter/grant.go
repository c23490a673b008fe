package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/store"
)

// grantWorker gives an existing role exactly what the worker needs (see
// store.GrantWorker) and prints what the role may do afterwards, read back
// from the catalog. It runs as the role that migrated, over
// DATABASE_LISTEN_URL like migrate: the role that owns the engine's tables is
// the one that may grant on them and add their policies.
func (a *app) grantWorker(ctx context.Context, role string, format outputFormat) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	var g store.WorkerGrant
	if err := withOwnerSession(ctx, cfg, func(conn *pgx.Conn) (err error) {
		g, err = store.GrantWorker(ctx, conn, role)
		return err
	}); err != nil {
		return err
	}
	return a.print(format, grantResult(g))
}

// grantResult is what a role may do after grant-worker.
type grantResult struct {
	Role      string              `json:"role"`
	Tables    map[string][]string `json:"tables"`
	Functions []string            `json:"functions"`
	Policies  []string            `json:"policies"`
	Settings  []string            `json:"settings"`
	Notes     []string            `json:"notes"`
}

func (g grantResult) writeText(w io.Writer) error {
	printWorkerGrant(w, store.WorkerGrant(g))
	return nil
}

func printWorkerGrant(out io.Writer, g store.WorkerGrant) {
	fmt.Fprintf(out, "role %s may now do what the worker needs, and nothing else of the engine:\n\n", g.Role)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tPRIVILEGES")
	tables := make([]string, 0, len(g.Tables))
	for t := range g.Tables {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, t := range tables {
		fmt.Fprintf(tw, "%s\t%s\n", t, strings.Join(g.Tables[t], ", "))
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nfunctions it may execute: %s\n", orNone(g.Functions))
	fmt.Fprintln(out, "row level security policies for it:")
	for _, p := range g.Policies {
		fmt.Fprintf(out, "  %s\n", p)
	}
	fmt.Fprintf(out, "its session settings in this database: %s\n", orNone(g.Settings))
	fmt.Fprintln(out, "it may not create, alter or drop anything, truncate a table, or read the schema version")
	for _, n := range g.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}
