// Package config holds every setting of the worker and the starter in one
// place, read from the environment with caarlos0/env.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/caarlos0/env/v10"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/eventmatch/matchmaker/internal/aiprice"
)

// Config is read once at start. Names match the environment variables the
// Edge Function used where one existed (BATCH_SIZE, MAX_RUNTIME_MS).
type Config struct {
	// DatabaseURL is what every query uses. It may go through a
	// transaction-mode pooler (pgbouncer=true, or Supabase's port 6543).
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/matchmaking?sslmode=disable"`
	// DatabaseListenURL is what needs a session of its own: the worker's
	// LISTEN and `starter migrate` (tern's advisory lock) and grant-worker.
	// It must be a direct connection or a session-mode pooler. Unset means
	// DatabaseURL.
	DatabaseListenURL string `env:"DATABASE_LISTEN_URL"`
	// TemporalAddress and TemporalNamespace are where both binaries
	// connect. Like every Temporal tool they come from TEMPORAL_ADDRESS and
	// TEMPORAL_NAMESPACE, else from the profile of Temporal's client config
	// file (TEMPORAL_PROFILE in TEMPORAL_CONFIG_FILE; see
	// go.temporal.io/sdk/contrib/envconfig), else localhost:7233 and
	// default. Load resolves them, so what is logged and dialled agree.
	// TLS and the API key are read by internal/connect alone, from the same
	// variables and profile: they stay out of Config, which is printed.
	TemporalAddress   string `env:"TEMPORAL_ADDRESS"`
	TemporalNamespace string `env:"TEMPORAL_NAMESPACE"`
	// TemporalConfigFile is Temporal's client config file (TOML); unset
	// means the default, os.UserConfigDir()/temporalio/temporal.toml, when
	// it exists.
	TemporalConfigFile string `env:"TEMPORAL_CONFIG_FILE"`
	// TemporalProfile names the profile in that file; unset means
	// "default" when the file has one.
	TemporalProfile string `env:"TEMPORAL_PROFILE"`
	TaskQueue       string `env:"TEMPORAL_TASK_QUEUE" envDefault:"matchmaking"`

	// BatchSize is the number of queued members one batch claims (without
	// the cap; with it a batch claims every queued member). The score step
	// of a batch scores about BatchSize × the event's members pairs in one
	// attempt of MaxRuntimeMS (README, "Why BATCH_SIZE=50000").
	BatchSize int `env:"BATCH_SIZE" envDefault:"50000"`
	// MaxRuntimeMS is the time budget of one activity run.
	MaxRuntimeMS int `env:"MAX_RUNTIME_MS" envDefault:"45000"`
	// TopN is how many people each member is told to meet.
	TopN int `env:"TOP_N" envDefault:"3"`
	// MaxAppearances is the most lists one member may appear in: a fair
	// share puts everyone in at most TopN lists, and only lists it leaves
	// short take members up to this (see matching.CappedLists); 0 means
	// no cap. Unset (or empty) means 2 × TopN, set by LoadWith once TopN
	// is known.
	MaxAppearances int `env:"MAX_APPEARANCES"`
	// FanOutMinPairs: an uncapped batch is scored in shards across worker
	// processes only when its pairs (claimed members × the event's
	// members) reach this many; below it, one worker scores the batch
	// sooner than shards' round trips and merge let several. The
	// default is past every size measured (docs/PERFORMANCE.md: shards
	// paid at none of 20,000, 50,000 and 100,000 members), batches of
	// 50,000 included. 0 shards every batch the workflow would.
	FanOutMinPairs int64 `env:"FAN_OUT_MIN_PAIRS" envDefault:"10000000000"`

	// OpenAIAPIKey enables AI insights; unset means fallback insights only.
	OpenAIAPIKey string `env:"OPENAI_API_KEY"`
	OpenAIModel  string `env:"OPENAI_MODEL" envDefault:"gpt-4o-mini"`
	// OpenAIBaseURL points at any OpenAI-compatible endpoint (Azure OpenAI,
	// OpenRouter, vLLM, Ollama); empty means OpenAI itself.
	OpenAIBaseURL string `env:"OPENAI_BASE_URL"`
	// AIConcurrency bounds model calls in flight per insight activity.
	AIConcurrency int `env:"AI_CONCURRENCY" envDefault:"16"`
	// AIRequestsPerMinute bounds model calls per worker process.
	AIRequestsPerMinute int `env:"AI_REQUESTS_PER_MINUTE" envDefault:"3000"`
	// AIRequestTimeout bounds one HTTP attempt to the model.
	AIRequestTimeout time.Duration `env:"AI_REQUEST_TIMEOUT" envDefault:"20s"`
	// AIMaxCallsPerEvent bounds the model calls the AI backfill spends on
	// one event, all its runs together; 0 means no bound. Once spent, the
	// remaining matches keep the fallback insight.
	AIMaxCallsPerEvent int `env:"AI_MAX_CALLS_PER_EVENT" envDefault:"0"`
	// AIMaxSpendUSDPerEvent bounds what the AI backfill spends on one
	// event, in USD, all its runs together, priced by AIPrices for
	// OPENAI_MODEL; 0 means no bound.
	AIMaxSpendUSDPerEvent float64 `env:"AI_MAX_SPEND_USD_PER_EVENT" envDefault:"0"`
	// AIPrices adds to or overrides the built-in price table
	// (aiprice.Defaults): model=input/output USD per million tokens,
	// comma-separated.
	AIPrices string `env:"AI_PRICES"`
	// AIBatchAPI sends a large backlog through the provider's Batch API
	// (/v1/files and /v1/batches) instead of one call per pair.
	AIBatchAPI bool `env:"AI_BATCH_API" envDefault:"false"`
	// AIBatchMinBacklog is the backlog (fallback insights of an event) at
	// which the Batch API is used.
	AIBatchMinBacklog int `env:"AI_BATCH_MIN_BACKLOG" envDefault:"2000"`
	// AIBatchPoll is how often the backfill asks whether its batch is done.
	AIBatchPoll time.Duration `env:"AI_BATCH_POLL" envDefault:"1m"`

	// IdlePoll is how often an idle event workflow looks at its queue on
	// its own, in case a wake-up was missed.
	IdlePoll time.Duration `env:"IDLE_POLL" envDefault:"5m"`
	// SafetyPoll is how often the worker's listener looks for queues that
	// have rows but no workflow working on them (rows enqueued while no
	// worker ran, or a missed notification).
	SafetyPoll time.Duration `env:"SAFETY_POLL" envDefault:"30s"`
	// WakeDebounce groups bursts of queue notifications for one event into
	// one signal.
	WakeDebounce time.Duration `env:"WAKE_DEBOUNCE" envDefault:"50ms"`

	// MetricsAddr is where the worker serves Prometheus metrics at /metrics
	// (host:port; port 0 picks a free one). Set it to the empty string to
	// serve none.
	MetricsAddr string `env:"METRICS_ADDR" envDefault:"127.0.0.1:9464"`
	// WorkerStopTimeout is how long a stopping worker (SIGTERM) lets running
	// activities finish before it cancels them; what cannot finish by then
	// is released for another worker. Kubernetes' grace period must exceed
	// it.
	WorkerStopTimeout time.Duration `env:"WORKER_STOP_TIMEOUT" envDefault:"25s"`
	// LogLevel is the lowest level logged: debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is text (logfmt-like key=value) or json (one object a line).
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`
}

// Log levels and formats LOG_LEVEL and LOG_FORMAT accept.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
)

// Load reads the environment. A bad value is reported with the variable's
// name so an operator knows what to fix.
func Load() (Config, error) { return LoadWith(Overrides{}) }

// Overrides are connection settings given on a command line (the
// binaries' --database-url, --address, --namespace and --task-queue). They
// win over the environment and the Temporal profile; an empty field leaves
// what those say.
type Overrides struct {
	// DatabaseURL replaces DATABASE_URL and DATABASE_LISTEN_URL alike: a
	// command pointed at one database must not migrate or listen on
	// another that the environment names.
	DatabaseURL       string
	TemporalAddress   string
	TemporalNamespace string
	TaskQueue         string
}

// LoadWith is Load with o applied over the environment, before the
// Temporal profile is resolved and everything is checked.
func LoadWith(o Overrides) (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", unwrapEnvError(err))
	}
	// env treats a variable set to "" like an unset one and applies the
	// default; for METRICS_ADDR the empty string means "no endpoint".
	if v, ok := os.LookupEnv("METRICS_ADDR"); ok && strings.TrimSpace(v) == "" {
		c.MetricsAddr = ""
	}
	// Unset is not 0 (no cap): the default follows TOP_N. An empty value
	// counts as unset, as env does for every variable with a default.
	if v, ok := os.LookupEnv("MAX_APPEARANCES"); !ok || v == "" {
		c.MaxAppearances = DefaultMaxAppearances(c.TopN)
	}
	if o.DatabaseURL != "" {
		c.DatabaseURL, c.DatabaseListenURL = o.DatabaseURL, ""
	}
	c.TemporalAddress = cmp.Or(o.TemporalAddress, c.TemporalAddress)
	c.TemporalNamespace = cmp.Or(o.TemporalNamespace, c.TemporalNamespace)
	c.TaskQueue = cmp.Or(o.TaskQueue, c.TaskQueue)
	// Before validate: the profile may name the address and namespace.
	if err := c.resolveTemporal(); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// Temporal's own defaults, for when neither the environment nor a profile
// names an address or namespace.
const (
	DefaultTemporalAddress   = "localhost:7233"
	DefaultTemporalNamespace = "default"
)

// resolveTemporal fills TemporalAddress and TemporalNamespace the way
// Temporal's tools do: the variable when set (not empty), else the
// profile's value, else the default. A profile's address is therefore
// never hidden behind this package's default.
func (c *Config) resolveTemporal() error {
	prof, err := c.TemporalClientProfile(nil)
	if err != nil {
		return err
	}
	if c.TemporalAddress == "" {
		c.TemporalAddress = cmp.Or(prof.Address, DefaultTemporalAddress)
	}
	if c.TemporalNamespace == "" {
		c.TemporalNamespace = cmp.Or(prof.Namespace, DefaultTemporalNamespace)
	}
	return nil
}

// TemporalClientProfile reads the Temporal client profile that
// TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE name (the default file and
// profile when unset, and nothing when the default file does not exist),
// and applies Temporal's environment variables (TEMPORAL_ADDRESS,
// TEMPORAL_API_KEY, TEMPORAL_TLS_*, ...) from env on top, unless env is
// nil. Errors name the variable or file to fix, and never quote the
// file's content, which may hold an API key.
func (c Config) TemporalClientProfile(env envconfig.EnvLookup) (envconfig.ClientConfigProfile, error) {
	file, fileVar := c.TemporalConfigFile, "TEMPORAL_CONFIG_FILE "+c.TemporalConfigFile
	if file != "" {
		// envconfig skips a missing file, which suits its default path but
		// not a file named on purpose: a typo would silently connect to
		// localhost instead.
		if _, err := os.Stat(file); err != nil {
			return envconfig.ClientConfigProfile{}, fmt.Errorf("TEMPORAL_CONFIG_FILE: %w", err)
		}
	} else {
		file, fileVar = envconfig.DefaultConfigFilePath(), "Temporal config file "+envconfig.DefaultConfigFilePath()
	}
	var conf envconfig.ClientConfig
	if file != "" { // "" when the system has no user config directory
		var err error
		if conf, err = envconfig.LoadClientConfig(envconfig.LoadClientConfigOptions{ConfigFilePath: file}); err != nil {
			var pe toml.ParseError
			if errors.As(err, &pe) {
				// pe.Message may quote the offending text.
				return envconfig.ClientConfigProfile{}, fmt.Errorf("%s is not valid TOML: line %d (after key %q)", fileVar, pe.Position.Line, pe.LastKey)
			}
			return envconfig.ClientConfigProfile{}, fmt.Errorf("%s: %w", fileVar, err)
		}
	}
	var prof envconfig.ClientConfigProfile
	name := cmp.Or(c.TemporalProfile, envconfig.DefaultConfigFileProfile)
	if p := conf.Profiles[name]; p != nil {
		prof = *p
	} else if c.TemporalProfile != "" {
		profiles := slices.Sorted(maps.Keys(conf.Profiles))
		return envconfig.ClientConfigProfile{}, fmt.Errorf("TEMPORAL_PROFILE %q: %s has no such profile (it has: %s)",
			c.TemporalProfile, fileVar, cmp.Or(strings.Join(profiles, ", "), "none"))
	}
	if env != nil {
		if err := prof.ApplyEnvVars(env); err != nil {
			return envconfig.ClientConfigProfile{}, fmt.Errorf("the Temporal environment variables: %w", err)
		}
	}
	return prof, nil
}

// ListenURL is DATABASE_LISTEN_URL, or DATABASE_URL when it is unset.
func (c Config) ListenURL() string {
	if c.DatabaseListenURL != "" {
		return c.DatabaseListenURL
	}
	return c.DatabaseURL
}

// ListenVar names the variable ListenURL came from, for messages.
func (c Config) ListenVar() string {
	if c.DatabaseListenURL != "" {
		return "DATABASE_LISTEN_URL"
	}
	return "DATABASE_URL"
}

// MaxBatchSize is the largest BATCH_SIZE: in practice every queued member,
// as a batch claims with the cap on (activities.CappedBatchSize).
const MaxBatchSize = 1_000_000

// DefaultMaxAppearances is MAX_APPEARANCES when unset: twice the places a
// member's own list takes, so attention spreads while lists keep most of
// their score (docs/PERFORMANCE.md has the figures for other caps).
func DefaultMaxAppearances(topN int) int { return 2 * topN }

// MaxRuntime is MAX_RUNTIME_MS as a duration.
func (c Config) MaxRuntime() time.Duration {
	return time.Duration(c.MaxRuntimeMS) * time.Millisecond
}

func (c Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	// A value of only whitespace is as empty as "" (which env replaces
	// with the default) and would fail later, further from its cause.
	notBlank := func(name, value string) {
		check(strings.TrimSpace(value) != "", "%s must not be empty or blank, got %q", name, value)
	}
	notBlank("DATABASE_URL", c.DatabaseURL)
	// Unset is "" (env cannot tell it from an empty value): only blanks.
	check(c.DatabaseListenURL == "" || strings.TrimSpace(c.DatabaseListenURL) != "",
		"DATABASE_LISTEN_URL must not be blank, got %q; unset it to use DATABASE_URL", c.DatabaseListenURL)
	notBlank("TEMPORAL_ADDRESS", c.TemporalAddress)
	notBlank("TEMPORAL_NAMESPACE", c.TemporalNamespace)
	notBlank("TEMPORAL_TASK_QUEUE", c.TaskQueue)
	check(c.BatchSize >= 1 && c.BatchSize <= MaxBatchSize, "BATCH_SIZE must be between 1 and %d, got %d", MaxBatchSize, c.BatchSize)
	check(c.MaxRuntimeMS >= 1000 && c.MaxRuntimeMS <= 3600000, "MAX_RUNTIME_MS must be between 1000 and 3600000, got %d", c.MaxRuntimeMS)
	check(c.TopN >= 1 && c.TopN <= 20, "TOP_N must be between 1 and 20, got %d", c.TopN)
	// Fewer places than TOP_N per member could not fill every list.
	check(c.MaxAppearances == 0 || c.MaxAppearances >= c.TopN,
		"MAX_APPEARANCES must be 0 (no cap) or at least TOP_N (%d), got %d", c.TopN, c.MaxAppearances)
	check(c.FanOutMinPairs >= 0, "FAN_OUT_MIN_PAIRS must not be negative, got %d", c.FanOutMinPairs)
	check(c.IdlePoll >= time.Second, "IDLE_POLL must be at least 1s, got %s", c.IdlePoll)
	check(c.SafetyPoll >= time.Second, "SAFETY_POLL must be at least 1s, got %s", c.SafetyPoll)
	check(c.WakeDebounce >= 0 && c.WakeDebounce <= 10*time.Second, "WAKE_DEBOUNCE must be between 0 and 10s, got %s", c.WakeDebounce)
	check(c.WorkerStopTimeout >= 0 && c.WorkerStopTimeout <= 10*time.Minute, "WORKER_STOP_TIMEOUT must be between 0 and 10m, got %s", c.WorkerStopTimeout)
	notBlank("OPENAI_MODEL", c.OpenAIModel)
	// A blank key would turn AI insights on and fail every model call.
	check(c.OpenAIAPIKey == "" || strings.TrimSpace(c.OpenAIAPIKey) != "",
		"OPENAI_API_KEY is set but blank (only whitespace); set it to your API key, or unset it to write fallback insights without AI")
	check(c.AIConcurrency >= 1 && c.AIConcurrency <= 256, "AI_CONCURRENCY must be between 1 and 256, got %d", c.AIConcurrency)
	check(c.AIRequestsPerMinute >= 0, "AI_REQUESTS_PER_MINUTE must not be negative, got %d", c.AIRequestsPerMinute)
	check(c.AIMaxCallsPerEvent >= 0, "AI_MAX_CALLS_PER_EVENT must not be negative (0 means no limit), got %d", c.AIMaxCallsPerEvent)
	check(c.AIMaxSpendUSDPerEvent >= 0 && !math.IsInf(c.AIMaxSpendUSDPerEvent, 0),
		"AI_MAX_SPEND_USD_PER_EVENT must be a number of USD, not negative (0 means no limit), got %v", c.AIMaxSpendUSDPerEvent)
	if prices, err := aiprice.Parse(c.AIPrices); err != nil {
		errs = append(errs, fmt.Errorf("AI_PRICES: %w", err))
	} else if _, ok := prices.Lookup(c.OpenAIModel); c.AIMaxSpendUSDPerEvent > 0 && !ok {
		// A zero price would let the backfill spend without bound.
		errs = append(errs, fmt.Errorf("AI_MAX_SPEND_USD_PER_EVENT is set but OPENAI_MODEL %q has no price: add it to AI_PRICES as %s=input/output (USD per 1M tokens); known models: %s",
			c.OpenAIModel, c.OpenAIModel, strings.Join(prices.Models(), ", ")))
	}
	check(c.AIBatchMinBacklog >= 1, "AI_BATCH_MIN_BACKLOG must be at least 1, got %d", c.AIBatchMinBacklog)
	check(c.AIBatchPoll >= time.Second, "AI_BATCH_POLL must be at least 1s, got %s", c.AIBatchPoll)
	check(c.AIRequestTimeout >= 100*time.Millisecond, "AI_REQUEST_TIMEOUT must be at least 100ms, got %s", c.AIRequestTimeout)
	if err := checkListenAddr(c.MetricsAddr); err != nil {
		errs = append(errs, fmt.Errorf("METRICS_ADDR must be host:port (for example 127.0.0.1:9464), or empty to serve no metrics, got %q: %w", c.MetricsAddr, err))
	}
	check(slices.Contains(LogLevels, strings.ToLower(c.LogLevel)), "LOG_LEVEL must be one of %s, got %q", strings.Join(LogLevels, ", "), c.LogLevel)
	check(slices.Contains(LogFormats, strings.ToLower(c.LogFormat)), "LOG_FORMAT must be one of %s, got %q", strings.Join(LogFormats, ", "), c.LogFormat)
	return errors.Join(errs...)
}

// checkListenAddr accepts "" (disabled) and host:port with a numeric port;
// the host may be empty (all interfaces).
func checkListenAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number between 0 and 65535", port)
	}
	return nil
}

// ModelPrice is OPENAI_MODEL's price from the built-in table and
// AI_PRICES; ok is false for a model the table does not price (validate
// refuses that when a spend limit is set).
func (c Config) ModelPrice() (p aiprice.Price, ok bool) {
	prices, err := aiprice.Parse(c.AIPrices)
	if err != nil {
		return aiprice.Price{}, false
	}
	return prices.Lookup(c.OpenAIModel)
}

// AIEnabled reports whether insights are written by a model.
func (c Config) AIEnabled() bool { return c.OpenAIAPIKey != "" }

// unwrapEnvError rewrites env's parse errors, which name the Go field
// ("BatchSize"), so that they name the environment variable instead.
func unwrapEnvError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if field, ok := reflect.TypeOf(Config{}).FieldByName(pe.Name); ok {
				e = fmt.Errorf("%s: invalid value: %v", field.Tag.Get("env"), pe.Err)
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}
