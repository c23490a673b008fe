// Package deploy checks docker-compose.yml, the Dockerfile and the scripts in
// deploy/ by reading them: no Docker engine runs where the tests run, so what
// can be checked without one is checked here.
package deploy

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/workflows"
)

// The services the tests look up by name.
const (
	svcPostgres       = "postgres"
	svcTemporal       = "temporal"
	svcTemporalSchema = "temporal-schema"
	svcTemporalSetup  = "temporal-setup"
	svcMigrate        = "migrate"
	svcGrantWorker    = "grant-worker"
	svcAppGrants      = "app-grants"
	svcWorker         = "worker"
	svcStarter        = "starter"
)

// repoBuilt are the services that run this repository's binaries.
var repoBuilt = []string{svcMigrate, svcGrantWorker, svcWorker, svcStarter}

// wantSearchAttributes is what temporal-setup must register: the workflow's
// custom search attributes, no more and no fewer.
var wantSearchAttributes = map[string]string{
	"MatchmakingEventCode":    "Keyword",
	"MatchmakingPaused":       "Bool",
	"MatchmakingUsersMatched": "Int",
	"MatchmakingQueueDepth":   "Int",
}

type service struct {
	Image       string       `yaml:"image"`
	Build       any          `yaml:"build"`
	Entrypoint  any          `yaml:"entrypoint"`
	Command     any          `yaml:"command"`
	Environment any          `yaml:"environment"`
	DependsOn   any          `yaml:"depends_on"`
	Restart     string       `yaml:"restart"`
	Ports       []any        `yaml:"ports"`
	Volumes     []any        `yaml:"volumes"`
	Profiles    []string     `yaml:"profiles"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
	// StopGracePeriod is how long Compose waits after SIGTERM before
	// SIGKILL; unset means 10s.
	StopGracePeriod string `yaml:"stop_grace_period"`
}

type healthcheck struct {
	Test        any    `yaml:"test"`
	Disable     bool   `yaml:"disable"`
	Interval    string `yaml:"interval"`
	Timeout     string `yaml:"timeout"`
	StartPeriod string `yaml:"start_period"`
	Retries     int    `yaml:"retries"`
}

type compose struct {
	Services map[string]service `yaml:"services"`
}

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal(repoFile(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml is not valid YAML: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

func (c compose) service(t *testing.T, name string) service {
	t.Helper()
	svc, ok := c.Services[name]
	if !ok {
		t.Fatalf("service %s is missing", name)
	}
	return svc
}

func (c compose) sortedNames() []string {
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// env returns a service's environment in either of Compose's forms.
func (s service) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch v := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, val := range v {
			if val == nil {
				out[k] = ""
			} else {
				out[k] = strings.TrimSpace(yamlScalar(val))
			}
		}
	case []any:
		for _, item := range v {
			k, val, _ := strings.Cut(yamlScalar(item), "=")
			out[k] = val
		}
	default:
		t.Fatalf("environment has unexpected form %T", v)
	}
	return out
}

func yamlScalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	default:
		out, _ := yaml.Marshal(x)
		return strings.TrimSpace(string(out))
	}
}

// words returns an entrypoint or command as a list (a string is split on
// spaces, as Compose does for the shell-less form).
func words(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return strings.Fields(x)
	case []any:
		out := make([]string, 0, len(x))
		for _, item := range x {
			out = append(out, yamlScalar(item))
		}
		return out
	}
	return nil
}

// dependencies returns depends_on as target → condition.
func (s service) dependencies(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch v := s.DependsOn.(type) {
	case nil:
	case []any:
		for _, item := range v {
			out[yamlScalar(item)] = "service_started"
		}
	case map[string]any:
		for name, spec := range v {
			cond := "service_started"
			if m, ok := spec.(map[string]any); ok && m["condition"] != nil {
				cond = yamlScalar(m["condition"])
			}
			out[name] = cond
		}
	default:
		t.Fatalf("depends_on has unexpected form %T", v)
	}
	return out
}

func (s service) hasHealthcheck() bool {
	return s.Healthcheck != nil && !s.Healthcheck.Disable && s.Healthcheck.Test != nil
}

// oneShot reports whether a service runs to completion instead of serving:
// no restart policy that brings it back, no published ports, no healthcheck.
func (s service) oneShot() bool {
	return (s.Restart == "" || s.Restart == "no") && len(s.Ports) == 0 && !s.hasHealthcheck()
}

// configEnvVars returns every environment variable config.Config reads,
// from its env tags at run time, so that settings added there are known here.
func configEnvVars() map[string]bool {
	known := map[string]bool{}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
				walk(f.Type, prefix+f.Tag.Get("envPrefix"))
				continue
			}
			if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
				known[prefix+name] = true
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}), "")
	return known
}

// configDefault is the envDefault of the config.Config field read from
// the environment variable name, and whether there is one.
func configDefault(name string) (string, bool) {
	var find func(reflect.Type, string) (string, bool)
	find = func(typ reflect.Type, prefix string) (string, bool) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
				if v, ok := find(f.Type, prefix+f.Tag.Get("envPrefix")); ok {
					return v, true
				}
				continue
			}
			if n, _, _ := strings.Cut(f.Tag.Get("env"), ","); n != "" && prefix+n == name {
				return f.Tag.Lookup("envDefault")
			}
		}
		return "", false
	}
	return find(reflect.TypeOf(config.Config{}), "")
}

var versionTag = regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?([-.][0-9A-Za-z.-]+)?$`)

// splitImage returns an image reference's name, tag and digest.
func splitImage(ref string) (name, tag, digest string) {
	name, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

func TestComposeImagesArePinned(t *testing.T) {
	c := loadCompose(t)
	for _, name := range c.sortedNames() {
		svc := c.Services[name]
		if svc.Image == "" {
			if svc.Build == nil {
				t.Errorf("service %s has neither image nor build", name)
			}
			continue
		}
		if svc.Build != nil {
			continue // a local tag for the image built here
		}
		img, tag, digest := splitImage(svc.Image)
		switch {
		case strings.Contains(svc.Image, "${"):
			t.Errorf("service %s: image %q is set from the environment; pin it in the file", name, svc.Image)
		case digest != "":
		case tag == "" || tag == "latest":
			t.Errorf("service %s: image %q is not pinned to a version", name, svc.Image)
		case !versionTag.MatchString(tag):
			t.Errorf("service %s: image %q: tag %q is not an exact version", name, svc.Image, tag)
		}
		if strings.HasSuffix(img, "temporalio/auto-setup") {
			t.Errorf("service %s uses the deprecated temporalio/auto-setup; use temporalio/server with admin-tools", name)
		}
	}
}

// The schema the server expects ships with admin-tools: same version.
func TestComposeTemporalImagesAgree(t *testing.T) {
	c := loadCompose(t)
	server, serverTag, _ := splitImage(c.service(t, svcTemporal).Image)
	if server != "temporalio/server" {
		t.Fatalf("service %s runs %q, want temporalio/server", svcTemporal, server)
	}
	for _, name := range []string{svcTemporalSchema, svcTemporalSetup} {
		img, tag, _ := splitImage(c.service(t, name).Image)
		if img != "temporalio/admin-tools" || tag != serverTag {
			t.Errorf("service %s runs %q, want temporalio/admin-tools:%s to match the server", name, c.Services[name].Image, serverTag)
		}
	}
}

// TestComposeSettingsExist catches a renamed or misspelt variable in the
// services built from this repository.
func TestComposeSettingsExist(t *testing.T) {
	known := configEnvVars()
	c := loadCompose(t)
	for _, name := range c.sortedNames() {
		svc := c.Services[name]
		if svc.Build == nil {
			if slices.Contains(repoBuilt, name) {
				t.Errorf("service %s must be built from the repository's Dockerfile", name)
			}
			continue
		}
		env := svc.env(t)
		for key := range env {
			if !known[key] {
				t.Errorf("service %s sets %s, which config.Config does not read", name, key)
			}
		}
		if !strings.Contains(env["DATABASE_URL"], "@"+svcPostgres+":5432/") {
			t.Errorf("service %s: DATABASE_URL %q does not point at the postgres service", name, env["DATABASE_URL"])
		}
		if env["TEMPORAL_ADDRESS"] != svcTemporal+":7233" {
			t.Errorf("service %s: TEMPORAL_ADDRESS %q, want %s:7233", name, env["TEMPORAL_ADDRESS"], svcTemporal)
		}
	}
	for _, name := range repoBuilt {
		c.service(t, name)
	}
	if got := words(c.Services[svcMigrate].Entrypoint); len(got) < 2 || got[0] != "/usr/local/bin/starter" || got[1] != "migrate" {
		t.Errorf("migrate service runs %v, want /usr/local/bin/starter migrate", got)
	}
	if got := words(c.Services[svcStarter].Entrypoint); len(got) != 1 || got[0] != "/usr/local/bin/starter" {
		t.Errorf("starter service runs %v, want /usr/local/bin/starter", got)
	}

	// All talk to the same database (each as its role: TestComposeRoles),
	// Temporal namespace and task queue.
	want := c.Services[svcWorker].env(t)
	for _, name := range repoBuilt {
		env := c.Services[name].env(t)
		if a, b := databaseOf(t, env["DATABASE_URL"]), databaseOf(t, want["DATABASE_URL"]); a != b {
			t.Errorf("service %s uses database %s, the worker %s", name, a, b)
		}
		for _, key := range []string{"TEMPORAL_NAMESPACE", "TEMPORAL_TASK_QUEUE"} {
			if env[key] != want[key] {
				t.Errorf("service %s: %s=%q, the worker has %q", name, key, env[key], want[key])
			}
		}
	}
}

// databaseOf is a URL's host:port/database, without the user.
func databaseOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("DATABASE_URL %q: %v", raw, err)
	}
	return u.Host + u.Path
}

func TestComposeWorker(t *testing.T) {
	c := loadCompose(t)
	worker := c.service(t, svcWorker)
	env := worker.env(t)
	if env["LOG_FORMAT"] != "json" {
		t.Errorf("worker: LOG_FORMAT=%q, want json", env["LOG_FORMAT"])
	}
	if env["OPENAI_API_KEY"] != "${OPENAI_API_KEY:-}" {
		t.Errorf("worker: OPENAI_API_KEY=%q, want it passed through from the host with an empty default", env["OPENAI_API_KEY"])
	}
	addr := env["METRICS_ADDR"]
	host, port, ok := strings.Cut(addr, ":")
	if !ok || host != "0.0.0.0" || port == "" {
		t.Fatalf("worker: METRICS_ADDR=%q, want 0.0.0.0:<port> so the published port reaches it", addr)
	}
	published := false
	for _, p := range worker.Ports {
		if strings.HasSuffix(yamlScalar(p), ":"+port) {
			published = true
		}
	}
	if !published {
		t.Errorf("worker: metrics port %s is not published (ports %v)", port, worker.Ports)
	}
}

// composeDefaultStopGrace is how long Compose waits between SIGTERM and
// SIGKILL when a service sets no stop_grace_period.
const composeDefaultStopGrace = 10 * time.Second

// workerHealthcheckClientTimeout is `worker healthcheck`'s own request
// timeout (worker/health.go, healthcheckTimeout); the healthcheck's
// timeout must leave it room to report.
const workerHealthcheckClientTimeout = 4 * time.Second

// TestComposeWorkerHealthAndStop: the image has no shell, so the
// healthcheck is the worker binary's own subcommand, run in exec form, on
// the fixed METRICS_ADDR port; and Compose must not SIGKILL the worker
// before WORKER_STOP_TIMEOUT has let its running steps finish.
func TestComposeWorkerHealthAndStop(t *testing.T) {
	c := loadCompose(t)
	worker := c.service(t, svcWorker)
	if !worker.hasHealthcheck() {
		t.Fatal("worker has no healthcheck; use [\"CMD\", \"/usr/local/bin/worker\", \"healthcheck\"]")
	}
	hc := worker.Healthcheck
	test := words(hc.Test)
	if want := []string{"CMD", "/usr/local/bin/worker", "healthcheck"}; !slices.Equal(test, want) {
		t.Errorf("worker healthcheck test %v, want %v: exec form (the image has no shell for CMD-SHELL) "+
			"running the binary the Dockerfile installs", test, want)
	}
	durations := map[string]string{"interval": hc.Interval, "timeout": hc.Timeout, "start_period": hc.StartPeriod}
	parsed := map[string]time.Duration{}
	for key, v := range durations {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Errorf("worker healthcheck %s %q: want a positive duration", key, v)
		}
		parsed[key] = d
	}
	if parsed["timeout"] <= workerHealthcheckClientTimeout {
		t.Errorf("worker healthcheck timeout %s must exceed the subcommand's own %s, or Docker kills it before it reports",
			hc.Timeout, workerHealthcheckClientTimeout)
	}
	if parsed["interval"] < parsed["timeout"] {
		t.Errorf("worker healthcheck interval %s is shorter than its timeout %s", hc.Interval, hc.Timeout)
	}
	if hc.Retries < 1 {
		t.Errorf("worker healthcheck retries %d, want at least 1", hc.Retries)
	}

	env := worker.env(t)
	// The subcommand reads METRICS_ADDR: it needs a fixed port.
	if addr := env["METRICS_ADDR"]; addr == "" || strings.HasSuffix(addr, ":0") {
		t.Errorf("worker: METRICS_ADDR=%q; the healthcheck needs the endpoint on a fixed port", addr)
	}

	stopTimeout, ok := env["WORKER_STOP_TIMEOUT"]
	if !ok {
		if stopTimeout, ok = configDefault("WORKER_STOP_TIMEOUT"); !ok {
			t.Fatal("config.Config has no WORKER_STOP_TIMEOUT default")
		}
	}
	stop, err := time.ParseDuration(stopTimeout)
	if err != nil {
		t.Fatalf("worker: WORKER_STOP_TIMEOUT=%q: %v", stopTimeout, err)
	}
	grace := composeDefaultStopGrace
	if worker.StopGracePeriod != "" {
		if grace, err = time.ParseDuration(worker.StopGracePeriod); err != nil {
			t.Fatalf("worker: stop_grace_period %q: %v", worker.StopGracePeriod, err)
		}
	}
	// The worker exits at most a few seconds after WORKER_STOP_TIMEOUT
	// (stopping the workers, releasing what could not finish).
	if grace < stop+5*time.Second {
		t.Errorf("worker: stop_grace_period %s (Compose SIGKILLs after it) must exceed WORKER_STOP_TIMEOUT %s by at least 5s, "+
			"or a drain in progress is killed", grace, stop)
	}
}

func TestComposeDependencies(t *testing.T) {
	c := loadCompose(t)
	for _, name := range c.sortedNames() {
		svc := c.Services[name]
		for target, cond := range svc.dependencies(t) {
			dep, ok := c.Services[target]
			if !ok {
				t.Errorf("service %s depends on %s, which does not exist", name, target)
				continue
			}
			if len(dep.Profiles) > 0 && !slices.ContainsFunc(dep.Profiles, func(p string) bool { return slices.Contains(svc.Profiles, p) }) {
				t.Errorf("service %s depends on %s, which only starts with profiles %v", name, target, dep.Profiles)
			}
			switch cond {
			case "service_started":
			case "service_healthy":
				if !dep.hasHealthcheck() {
					t.Errorf("service %s waits for %s to be healthy, but %s has no healthcheck", name, target, target)
				}
			case "service_completed_successfully":
				if !dep.oneShot() {
					t.Errorf("service %s waits for %s to complete, but %s is not a one-shot service (restart %q, ports %v, healthcheck %v)",
						name, target, target, dep.Restart, dep.Ports, dep.hasHealthcheck())
				}
			default:
				t.Errorf("service %s depends on %s with unknown condition %q", name, target, cond)
			}
		}
	}

	// No cycles: Compose would refuse to start.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string)
	visit = func(name string, path []string) {
		switch state[name] {
		case 1:
			t.Errorf("depends_on cycle: %s", strings.Join(append(path, name), " -> "))
			return
		case 2:
			return
		}
		state[name] = 1
		for target := range c.Services[name].dependencies(t) {
			if _, ok := c.Services[target]; ok {
				visit(target, append(path, name))
			}
		}
		state[name] = 2
	}
	for _, name := range c.sortedNames() {
		visit(name, nil)
	}

	// The order the stack needs.
	needs := map[string][]string{
		svcTemporal:      {svcTemporalSchema},
		svcTemporalSetup: {svcTemporal},
		svcWorker:        {svcMigrate, svcGrantWorker, svcTemporalSetup},
		svcMigrate:       {svcPostgres},
		svcGrantWorker:   {svcMigrate},
		svcAppGrants:     {svcMigrate},
	}
	for name, targets := range needs {
		deps := c.service(t, name).dependencies(t)
		for _, target := range targets {
			if _, ok := deps[target]; !ok {
				t.Errorf("service %s must depend on %s", name, target)
			}
		}
	}
}

func TestComposeDatabases(t *testing.T) {
	c := loadCompose(t)
	server := c.service(t, svcTemporal).env(t)
	schema := c.service(t, svcTemporalSchema).env(t)
	for _, key := range []string{"DB", "DB_PORT", "POSTGRES_SEEDS", "POSTGRES_USER", "POSTGRES_PWD", "DBNAME", "VISIBILITY_DBNAME"} {
		if server[key] == "" {
			t.Errorf("service %s: %s is not set", svcTemporal, key)
		}
		if schema[key] != server[key] {
			t.Errorf("%s=%q for %s but %q for %s", key, schema[key], svcTemporalSchema, server[key], svcTemporal)
		}
	}
	if server["POSTGRES_SEEDS"] != svcPostgres {
		t.Errorf("Temporal persists to %q, want the %s service", server["POSTGRES_SEEDS"], svcPostgres)
	}
	u, err := url.Parse(c.service(t, svcWorker).env(t)["DATABASE_URL"])
	if err != nil {
		t.Fatalf("worker DATABASE_URL: %v", err)
	}
	app := strings.TrimPrefix(u.Path, "/")
	dbs := []string{app, server["DBNAME"], server["VISIBILITY_DBNAME"]}
	if app == "" || dbs[0] == dbs[1] || dbs[0] == dbs[2] || dbs[1] == dbs[2] {
		t.Errorf("the app and Temporal must use separate databases, got app %q, temporal %q, visibility %q", dbs[0], dbs[1], dbs[2])
	}
	if got := c.service(t, svcPostgres).env(t)["POSTGRES_DB"]; got != app {
		t.Errorf("postgres creates database %q on first start, the app uses %q", got, app)
	}
}

func TestComposeSearchAttributes(t *testing.T) {
	c := loadCompose(t)
	setup := c.service(t, svcTemporalSetup)
	got := map[string]string{}
	for _, arg := range words(setup.Command) {
		name, typ, ok := strings.Cut(arg, "=")
		if !ok {
			t.Errorf("%s: argument %q is not NAME=Type", svcTemporalSetup, arg)
			continue
		}
		if _, dup := got[name]; dup {
			t.Errorf("%s registers %s twice", svcTemporalSetup, name)
		}
		got[name] = typ
	}
	if !reflect.DeepEqual(got, wantSearchAttributes) {
		t.Errorf("%s registers %v, want exactly %v", svcTemporalSetup, got, wantSearchAttributes)
	}

	// What the workflow upserts must be registered, with the same types.
	fromCode := map[string]string{}
	for _, key := range workflows.SearchAttributes {
		fromCode[key.GetName()] = key.GetValueType().String()
	}
	for name, typ := range fromCode {
		if !strings.EqualFold(got[name], typ) {
			t.Errorf("the workflow sets %s (%s), %s registers it as %q", name, typ, svcTemporalSetup, got[name])
		}
	}
	for name := range got {
		if _, ok := fromCode[name]; !ok {
			t.Errorf("%s registers %s, which workflows.SearchAttributes does not list", svcTemporalSetup, name)
		}
	}

	env := setup.env(t)
	worker := c.service(t, svcWorker).env(t)
	for _, key := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} {
		if env[key] != worker[key] {
			t.Errorf("%s: %s=%q, the worker uses %q", svcTemporalSetup, key, env[key], worker[key])
		}
	}

	script := string(scriptOf(t, c, svcTemporalSetup))
	for _, want := range []string{
		"temporal operator cluster health",
		"temporal operator namespace create",
		"temporal operator search-attribute list",
		"temporal operator search-attribute create",
		`--name "$name" --type "$type"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the %s script does not run %q", svcTemporalSetup, want)
		}
	}
	schema := string(scriptOf(t, c, svcTemporalSchema))
	for _, want := range []string{"temporal-sql-tool", " create", "setup-schema -v 0.0", "update-schema -d", "/etc/temporal/schema/postgresql/v12"} {
		if !strings.Contains(schema, want) {
			t.Errorf("the %s script does not contain %q", svcTemporalSchema, want)
		}
	}
}

// scriptOf returns the script a service runs from a bind-mounted directory.
func scriptOf(t *testing.T, c compose, name string) []byte {
	t.Helper()
	svc := c.service(t, name)
	ep := words(svc.Entrypoint)
	if len(ep) != 2 || ep[0] != "/bin/sh" {
		t.Fatalf("service %s: entrypoint %v, want [/bin/sh <script>] (admin-tools has no bash)", name, ep)
	}
	host, ok := hostPath(svc, ep[1])
	if !ok {
		t.Fatalf("service %s runs %s, which no bind mount provides", name, ep[1])
	}
	return repoFile(t, host)
}

// hostPath maps a path inside a service's container to the repository file
// a read-only bind mount puts there.
func hostPath(svc service, inContainer string) (string, bool) {
	for _, v := range svc.Volumes {
		parts := strings.Split(yamlScalar(v), ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
			continue
		}
		if rest, ok := strings.CutPrefix(inContainer, parts[1]); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
			return filepath.Join(parts[0], rest), true
		}
	}
	return "", false
}

func TestComposeMountedFiles(t *testing.T) {
	c := loadCompose(t)
	root := testenv.RepoRoot()
	for _, name := range c.sortedNames() {
		for _, v := range c.Services[name].Volumes {
			parts := strings.Split(yamlScalar(v), ":")
			if !strings.HasPrefix(parts[0], "./") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join(root, parts[0])); err != nil {
				t.Errorf("service %s mounts %s: %v", name, parts[0], err)
			}
			if len(parts) < 3 || parts[2] != "ro" {
				t.Errorf("service %s mounts %s writable; mount repository files read-only", name, parts[0])
			}
		}
	}

	server := c.service(t, svcTemporal)
	dc := server.env(t)["DYNAMIC_CONFIG_FILE_PATH"]
	host, ok := hostPath(server, dc)
	if !ok {
		t.Fatalf("temporal: DYNAMIC_CONFIG_FILE_PATH=%q is not in a bind mount; temporalio/server does not start without the file", dc)
	}
	var values map[string][]struct {
		Value       any            `yaml:"value"`
		Constraints map[string]any `yaml:"constraints"`
	}
	if err := yaml.Unmarshal(repoFile(t, host), &values); err != nil {
		t.Errorf("%s: %v", host, err)
	}

	// The scripts run under busybox sh: check the syntax with a POSIX shell.
	scripts, _ := filepath.Glob(filepath.Join(root, "deploy", "*", "*.sh"))
	if len(scripts) == 0 {
		t.Fatal("no scripts in deploy/")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to check the scripts' syntax")
	}
	for _, s := range scripts {
		if out, err := exec.Command(sh, "-n", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
		raw, _ := os.ReadFile(s)
		if !strings.HasPrefix(string(raw), "#!/bin/sh\n") {
			t.Errorf("%s must start with #!/bin/sh: admin-tools has no bash", s)
		}
	}
}

var goDirective = regexp.MustCompile(`(?m)^go (\d+)\.(\d+)(?:\.(\d+))?\s*$`)
var goImage = regexp.MustCompile(`^golang:(\d+)\.(\d+)\.(\d+)(-[a-z0-9.]+)?$`)

func TestDockerfile(t *testing.T) {
	raw := string(repoFile(t, "Dockerfile"))
	// Join continuation lines, drop comments.
	var lines []string
	for _, line := range strings.Split(strings.ReplaceAll(raw, "\\\n", " "), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}

	var stages []string
	var builds, finalCopies []string
	for _, line := range lines {
		fields := strings.Fields(line)
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			var ref string
			for _, f := range fields[1:] {
				if !strings.HasPrefix(f, "--") {
					ref = f
					break
				}
			}
			if !slices.Contains(stages, ref) {
				_, tag, digest := splitImage(ref)
				if digest == "" && (tag == "" || tag == "latest") {
					t.Errorf("Dockerfile: FROM %s is not pinned", ref)
				}
			}
			if i := slices.IndexFunc(fields, func(f string) bool { return strings.EqualFold(f, "AS") }); i > 0 && i+1 < len(fields) {
				stages = append(stages, fields[i+1])
			}
			finalCopies = nil
			if m := goImage.FindStringSubmatch(ref); m != nil {
				checkGoVersion(t, m[1:4])
			} else if strings.HasPrefix(ref, "golang:") {
				t.Errorf("Dockerfile: %s does not name an exact Go release", ref)
			}
		case "RUN":
			if strings.Contains(line, "go build") {
				builds = append(builds, line)
			}
		case "COPY":
			finalCopies = append(finalCopies, line)
		}
	}

	built := false
	for _, b := range builds {
		f := strings.Fields(b)
		if slices.Contains(f, "./worker") && slices.Contains(f, "./starter") {
			built = true
		}
	}
	if !built {
		t.Errorf("Dockerfile does not build ./worker and ./starter (go build lines: %v)", builds)
	}
	copied := strings.Join(finalCopies, "\n")
	for _, bin := range []string{"worker", "starter"} {
		if !regexp.MustCompile(`/`+bin+`\b`).MatchString(copied) || !strings.Contains(copied, "/usr/local/bin/") {
			t.Errorf("the final stage does not copy %s into /usr/local/bin/ (COPY lines: %v)", bin, finalCopies)
		}
	}
}

// checkGoVersion fails when the build image's Go is older than go.mod's go
// line: the official images set GOTOOLCHAIN=local and would refuse to build.
func checkGoVersion(t *testing.T, image []string) {
	t.Helper()
	m := goDirective.FindStringSubmatch(string(repoFile(t, "go.mod")))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	for i := range 3 {
		want, _ := strconv.Atoi(m[i+1])
		have, _ := strconv.Atoi(image[i])
		if have != want {
			if have < want {
				t.Errorf("Dockerfile builds with Go %s but go.mod needs go %s", strings.Join(image, "."), strings.Join(m[1:], "."))
			}
			return
		}
	}
}

// temporalStub stands in for the temporal CLI: it logs every call and answers
// from files in its directory, so setup.sh's logic runs without a server.
const temporalStub = `#!/bin/sh
dir=$(dirname "$0")
echo "$*" >>"$dir/calls"
case "$*" in
"operator cluster health"*)
	n=$(cat "$dir/health-failures" 2>/dev/null || echo 0)
	if [ "$n" -gt 0 ]; then echo $((n - 1)) >"$dir/health-failures"; exit 1; fi
	echo SERVING ;;
"operator namespace describe"*) [ -f "$dir/namespace" ] ;;
"operator namespace create"*) touch "$dir/namespace" ;;
"operator search-attribute list"*)
	echo "  Name                     Type"
	echo "  WorkflowId               Keyword"
	cat "$dir/attributes" 2>/dev/null ;;
"operator search-attribute create"*) ;;
*) echo "stub: unexpected call: $*" >&2; exit 3 ;;
esac
`

func runSetupScript(t *testing.T, existing string, healthFailures int) (calls []string, out string, err error) {
	t.Helper()
	sh, lookErr := exec.LookPath("sh")
	if lookErr != nil {
		t.Skip("no sh to run the setup script")
	}
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("temporal", temporalStub, 0o755)
	write("sleep", "#!/bin/sh\n", 0o755) // retries without waiting
	write("attributes", existing, 0o644)
	write("health-failures", strconv.Itoa(healthFailures), 0o644)

	c := loadCompose(t)
	args := append([]string{filepath.Join(testenv.RepoRoot(), "deploy", "temporal", "setup.sh")}, words(c.service(t, svcTemporalSetup).Command)...)
	cmd := exec.Command(sh, args...)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"TEMPORAL_ADDRESS=temporal:7233", "TEMPORAL_NAMESPACE=default")
	output, err := cmd.CombinedOutput()
	raw, _ := os.ReadFile(filepath.Join(dir, "calls"))
	return strings.Split(strings.TrimSpace(string(raw)), "\n"), string(output), err
}

func TestSetupScript(t *testing.T) {
	count := func(calls []string, prefix string) (n int) {
		for _, c := range calls {
			if strings.HasPrefix(c, prefix) {
				n++
			}
		}
		return n
	}

	t.Run("fresh server", func(t *testing.T) {
		calls, out, err := runSetupScript(t, "", 2)
		if err != nil {
			t.Fatalf("setup.sh: %v\n%s", err, out)
		}
		if n := count(calls, "operator cluster health"); n != 3 {
			t.Errorf("cluster health called %d times, want 3 (two failures, then SERVING)", n)
		}
		if n := count(calls, "operator namespace create --address temporal:7233 --namespace default"); n != 1 {
			t.Errorf("namespace created %d times, want 1\n%s", n, strings.Join(calls, "\n"))
		}
		for name, typ := range wantSearchAttributes {
			want := "operator search-attribute create --address temporal:7233 --namespace default --name " + name + " --type " + typ
			if n := count(calls, want); n != 1 {
				t.Errorf("%q run %d times, want 1", want, n)
			}
		}
	})

	t.Run("already set up", func(t *testing.T) {
		var existing strings.Builder
		for name, typ := range wantSearchAttributes {
			existing.WriteString("  " + name + "  " + typ + "\n")
		}
		calls, out, err := runSetupScript(t, existing.String(), 0)
		if err != nil {
			t.Fatalf("setup.sh: %v\n%s", err, out)
		}
		if n := count(calls, "operator search-attribute create"); n != 0 {
			t.Errorf("re-run created %d search attributes, want none\n%s", n, strings.Join(calls, "\n"))
		}
	})

	t.Run("type conflict", func(t *testing.T) {
		calls, out, err := runSetupScript(t, "  MatchmakingQueueDepth  Keyword\n", 0)
		if err == nil {
			t.Fatalf("setup.sh succeeded although MatchmakingQueueDepth exists as Keyword\n%s", out)
		}
		if !strings.Contains(out, "MatchmakingQueueDepth exists as Keyword") {
			t.Errorf("output does not explain the conflict:\n%s", out)
		}
		if n := count(calls, "operator search-attribute create --address temporal:7233 --namespace default --name MatchmakingQueueDepth"); n != 0 {
			t.Errorf("tried to create the conflicting attribute")
		}
	})
}
