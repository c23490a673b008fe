package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/cli"
)

const workerLong = `Runs the matchmaking engine's Temporal worker, and the queue listener that
wakes each event's workflow when its members change, until SIGINT or SIGTERM.
On either it lets running batch steps finish for WORKER_STOP_TIMEOUT and
gives the batches of those that cannot back to the queue.

Its configuration comes from environment variables (DATABASE_URL,
DATABASE_LISTEN_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
TEMPORAL_TLS_*, TEMPORAL_PROFILE, METRICS_ADDR, WORKER_STOP_TIMEOUT, ...),
described in the Configuration table of README.md; --database-url,
--address, --namespace and --task-queue override their variables.

Exit status: 0 stopped cleanly, 1 failed, 2 usage error.`

const healthcheckLong = `worker healthcheck asks the worker running with the same METRICS_ADDR for
its /readyz and exits 0 when it is ready (database, Temporal and LISTEN all
answer), 1 when it is not or cannot be reached: a container healthcheck
for images without a shell or HTTP client.`

// execute runs the worker's command line with args and returns the exit
// code (see cli.Execute). Help, --version and usage errors return without
// reading the configuration or connecting to anything.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var overrides config.Overrides
	root := &cobra.Command{
		Use:   "worker",
		Short: "The matchmaking engine's Temporal worker and queue listener",
		Long:  workerLong,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := config.LoadWith(overrides)
			if err != nil {
				return err
			}
			return runWorker(cfg, stderr)
		},
	}
	root.AddCommand(&cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the worker on METRICS_ADDR is ready, 1 when not",
		Long:  healthcheckLong,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := config.LoadWith(overrides)
			if err != nil {
				return err
			}
			// healthcheck has said why it is not ready.
			if code := healthcheck(cfg.MetricsAddr, healthcheckTimeout, stdout, stderr); code != cli.ExitOK {
				return &cli.ExitError{Code: code}
			}
			return nil
		},
	})
	cli.AddVersion(root, "worker")
	cli.AddConnectionFlags(root.PersistentFlags(), &overrides)
	return cli.Execute(ctx, root, args, stdout, stderr)
}
