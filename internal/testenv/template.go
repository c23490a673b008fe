package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/migrations"
)

// Migrating a database costs several times what copying a migrated one
// does, so each test binary migrates a template database once and every
// test's database is a copy of it (CREATE DATABASE ... TEMPLATE). The
// template is named by a hash of the migration files: a changed migration
// makes a new template, and a template whose name matches was made from
// exactly these files. Tests of migrating an empty database still do it
// for real (EmptyDatabase).

// templatePrefix begins every template's name; dropStaleTemplates finds
// them by it.
const templatePrefix = "mm_template_"

// templateLock is the key of the advisory lock under which templates are
// looked for, made and dropped, so that test binaries running at once (go
// test runs packages in parallel, and other checkouts may share the
// server) make each template once and never use one half made.
const templateLock int64 = 0x6d6d5f74706c // "mm_tpl"

// staleAfter is how long a template of other migration files is kept
// after its last use: another checkout (a branch with a new migration, say)
// may still be using it.
const staleAfter = 24 * time.Hour

// templateUsed begins a template's comment, which says when a test binary
// last used it; dropStaleTemplates reads it back.
const templateUsed = "matchmaker test template, last used "

var template struct {
	once sync.Once
	name string
	err  error
}

// migratedTemplate is the name of the migrated template database on the
// admin server, made by the first call in this test binary.
func migratedTemplate(ctx context.Context, adminCfg *pgx.ConnConfig) (string, error) {
	template.once.Do(func() {
		template.name, template.err = ensureTemplate(ctx, adminCfg)
	})
	return template.name, template.err
}

// templateName is the template's name for the migration files in
// migrations/: a hash of their names and contents.
func templateName() (string, error) {
	files, err := filepath.Glob(filepath.Join(RepoRoot(), "migrations", "*.sql"))
	if err != nil {
		return "", fmt.Errorf("list migration files: %w", err)
	}
	if len(files) == 0 {
		return "", errors.New("no migration files in migrations/")
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read migration file: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(data))
		h.Write(data)
	}
	return templatePrefix + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureTemplate makes the template unless a complete one exists, and drops
// templates of other migration files that no one used for staleAfter.
//
// A template is complete once it is marked IS_TEMPLATE, which happens only
// after its migration succeeded; one that is not (a test binary killed
// while migrating it) is dropped and made again. A complete template also
// refuses connections: CREATE DATABASE ... TEMPLATE fails while anyone is
// connected to the template, so no test may be.
func ensureTemplate(ctx context.Context, adminCfg *pgx.ConnConfig) (string, error) {
	name, err := templateName()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	admin, err := pgx.ConnectConfig(ctx, adminCfg)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL at %s:%d (is it running? see README): %w", adminCfg.Host, adminCfg.Port, err)
	}
	// Closing the session also releases the lock.
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		return "", fmt.Errorf("lock the test templates: %w", err)
	}

	var complete bool
	err = admin.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&complete)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if err := createTemplate(ctx, admin, adminCfg, name); err != nil {
			return "", err
		}
	case err != nil:
		return "", fmt.Errorf("look for template %s: %w", name, err)
	case !complete:
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("drop incomplete template %s: %w", name, err)
		}
		if err := createTemplate(ctx, admin, adminCfg, name); err != nil {
			return "", err
		}
	}
	if _, err := admin.Exec(ctx, "COMMENT ON DATABASE "+name+" IS '"+templateUsed+time.Now().UTC().Format(time.RFC3339)+"'"); err != nil {
		return "", fmt.Errorf("mark template %s used: %w", name, err)
	}
	if err := dropStaleTemplates(ctx, admin, name); err != nil {
		return "", err
	}
	return name, nil
}

// createTemplate creates and migrates the template, closes its connection
// and only then marks it complete.
func createTemplate(ctx context.Context, admin *pgx.Conn, adminCfg *pgx.ConnConfig, name string) error {
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create template %s: %w", name, err)
	}
	cfg := adminCfg.Copy()
	cfg.Database = name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to template %s: %w", name, err)
	}
	_, _, err = migrations.Apply(ctx, conn)
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("migrate template %s: %w", name, err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("mark template %s complete: %w", name, err)
	}
	return nil
}

// dropStaleTemplates drops the templates other than keep that are
// incomplete or were last used more than staleAfter ago. An incomplete one
// seen here was abandoned: templates are made only under the lock this
// session holds.
func dropStaleTemplates(ctx context.Context, admin *pgx.Conn, keep string) error {
	rows, err := admin.Query(ctx, `
		SELECT datname, datistemplate, coalesce(shobj_description(oid, 'pg_database'), '')
		FROM pg_database
		WHERE starts_with(datname, $1) AND datname <> $2`, templatePrefix, keep)
	if err != nil {
		return fmt.Errorf("list test templates: %w", err)
	}
	type tmpl struct {
		Name     string
		Complete bool
		Comment  string
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[tmpl])
	if err != nil {
		return fmt.Errorf("list test templates: %w", err)
	}
	for _, t := range found {
		if t.Complete {
			used, ok := strings.CutPrefix(t.Comment, templateUsed)
			if !ok {
				continue // not marked by this code: not ours to judge
			}
			if at, err := time.Parse(time.RFC3339, used); err != nil || time.Since(at) < staleAfter {
				continue
			}
			if _, err := admin.Exec(ctx, "ALTER DATABASE "+t.Name+" WITH IS_TEMPLATE false"); err != nil {
				return fmt.Errorf("unmark stale template %s: %w", t.Name, err)
			}
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE "+t.Name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop stale template %s: %w", t.Name, err)
		}
	}
	return nil
}
