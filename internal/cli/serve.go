package cli

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/backbone-etl/backbone/internal/alert"
	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/daemon"
	"github.com/backbone-etl/backbone/internal/ui"
)

// serveFile is the optional daemon configuration file (serve.yaml).
// ${VAR} and ${VAR:-default} are expanded in its values.
type serveFile struct {
	Listen        string `yaml:"listen"`
	State         string `yaml:"state"`
	Pipelines     string `yaml:"pipelines"`
	MaxConcurrent int    `yaml:"max_concurrent"`
	DrainTimeout  string `yaml:"drain_timeout"`
	Tokens        []struct {
		Name  string `yaml:"name"`
		Role  string `yaml:"role"`
		Env   string `yaml:"env"`   // the token's value is read from this variable
		Value string `yaml:"value"` // discouraged: prefer env
	} `yaml:"tokens"`
	Alerts struct {
		Webhooks []struct {
			Name    string            `yaml:"name"`
			URL     string            `yaml:"url"`
			Headers map[string]string `yaml:"headers"`
			Timeout string            `yaml:"timeout"`
		} `yaml:"webhooks"`
	} `yaml:"alerts"`
}

func (a *app) serveCmd() *cobra.Command {
	var (
		dir, listen, cfgFile, drain string
		maxConcurrent               int
		jsonLogs                    bool
		leaseTTL                    time.Duration
		keepHistory, keepEmpty      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: schedule every pipeline of a folder, serve the API, metrics and alerts",
		Long: `Serve loads every pipeline of a folder (*.yaml; *.test.yaml are fixtures) and runs each on its
schedule. It never runs two runs of one pipeline at once (across processes too, with a PostgreSQL
state store), retries failed runs with backoff, quarantines a pipeline that keeps failing, and
alerts on failures, error budgets and freshness. A change in the folder, or SIGHUP, reloads it: an
invalid new version is refused and the old one keeps running. SIGTERM drains: runs in flight stop
at a batch boundary and commit, then serve exits.

API tokens come from $BACKBONE_ADMIN_TOKEN and $BACKBONE_READ_TOKEN, or from --config; without a
token every endpoint but /healthz refuses. The API listens on 127.0.0.1 unless told otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts := daemon.Options{Registry: a.registry, Env: a.io.Env}
			if cfgFile != "" {
				if err := a.readServeFile(cfgFile, &opts); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("pipelines") || opts.Dir == "" {
				opts.Dir = dir
			}
			if cmd.Flags().Changed("listen") || opts.Listen == "" {
				opts.Listen = listen
			}
			if cmd.Flags().Changed("max-concurrent") {
				opts.MaxConcurrent = maxConcurrent
			}
			if cmd.Flags().Changed("drain-timeout") || opts.DrainTimeout == 0 {
				d, err := time.ParseDuration(drain)
				if err != nil {
					return &usageError{msg: fmt.Sprintf("--drain-timeout %q: %v", drain, err)}
				}
				opts.DrainTimeout = d
			}
			opts.LeaseTTL = leaseTTL
			opts.KeepHistory, opts.KeepEmpty = keepHistory, keepEmpty
			if a.stateArg != "" {
				opts.State = a.stateArg
			} else if v, ok := a.io.Env("BACKBONE_STATE"); ok && v != "" && opts.State == "" {
				opts.State = v
			}
			for _, t := range []struct {
				env  string
				role api.Role
			}{{"BACKBONE_ADMIN_TOKEN", api.RoleAdmin}, {"BACKBONE_READ_TOKEN", api.RoleRead}} {
				if v, ok := a.io.Env(t.env); ok && v != "" {
					opts.Tokens = append(opts.Tokens, api.Token{Name: strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(t.env, "BACKBONE_"), "_TOKEN")), Role: t.role, Value: v})
				}
			}
			var h slog.Handler = slog.NewTextHandler(a.io.Err, nil)
			if jsonLogs {
				h = slog.NewJSONHandler(a.io.Err, nil)
			}
			opts.Logger = slog.New(h)
			if len(opts.Tokens) == 0 {
				opts.Logger.Warn("no API token configured: every endpoint but /healthz refuses requests; set BACKBONE_ADMIN_TOKEN")
			}
			opts.UI = ui.Handler() // the dashboard, at every path outside the API
			d, err := daemon.New(ctx, opts)
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-hup:
						opts.Logger.Info("SIGHUP: reloading the pipeline folder")
						d.Reload(ctx)
					case <-ctx.Done():
						return
					}
				}
			}()
			err = d.Run(ctx, a.hard, func(addr string) {
				fmt.Fprintf(a.io.Out, "backbone serve: listening on http://%s, pipelines in %s\n", addr, opts.Dir)
			})
			// A drain after a signal is the normal end of a daemon: exit 0.
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "pipelines", "pipelines", "folder of pipeline files")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address of the API, metrics and dashboard")
	cmd.Flags().StringVar(&cfgFile, "config", "", "daemon configuration file (listen, state, pipelines, tokens, alerts.webhooks)")
	cmd.Flags().IntVar(&maxConcurrent, "max-concurrent", 0, "runs in flight over all pipelines (0: twice the CPUs)")
	cmd.Flags().StringVar(&drain, "drain-timeout", "30s", "on SIGTERM, how long runs in flight have to commit")
	cmd.Flags().BoolVar(&jsonLogs, "json-logs", false, "log as JSON lines")
	cmd.Flags().DurationVar(&keepHistory, "keep-history", 30*24*time.Hour, "how long run history is kept (each pipeline's newest run and success always are)")
	cmd.Flags().DurationVar(&keepEmpty, "keep-empty-runs", 24*time.Hour, "how long runs that succeeded without reading anything are kept")
	cmd.Flags().DurationVar(&leaseTTL, "lease-ttl", 30*time.Second, "with a PostgreSQL state store: how long a pipeline's lease outlives a process that stops renewing it")
	return cmd
}

// readServeFile reads serve.yaml into opts; errors name file:line:col.
func (a *app) readServeFile(path string, opts *daemon.Options) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	expanded := os.Expand(string(raw), func(v string) string {
		name, def, hasDef := strings.Cut(v, ":-")
		if val, ok := a.io.Env(name); ok && val != "" {
			return val
		}
		if hasDef {
			return def
		}
		return ""
	})
	var f serveFile
	if err := yaml.UnmarshalWithOptions([]byte(expanded), &f, yaml.Strict()); err != nil {
		fmt.Fprintf(a.io.Err, "%s:%s\n", path, yaml.FormatError(err, false, true))
		return &silentError{code: ExitConfig}
	}
	opts.Listen, opts.State, opts.Dir, opts.MaxConcurrent = f.Listen, f.State, f.Pipelines, f.MaxConcurrent
	if f.DrainTimeout != "" {
		d, err := time.ParseDuration(f.DrainTimeout)
		if err != nil {
			return &usageError{msg: fmt.Sprintf("%s: drain_timeout %q: %v", path, f.DrainTimeout, err)}
		}
		opts.DrainTimeout = d
	}
	for i, t := range f.Tokens {
		role := api.Role(t.Role)
		if role != api.RoleAdmin && role != api.RoleRead {
			return &usageError{msg: fmt.Sprintf("%s: tokens[%d]: role %q: want admin or read", path, i, t.Role)}
		}
		v := t.Value
		if t.Env != "" {
			v, _ = a.io.Env(t.Env)
		}
		if v == "" {
			return &usageError{msg: fmt.Sprintf("%s: tokens[%d] (%s): empty token (is $%s set?)", path, i, t.Name, t.Env)}
		}
		opts.Tokens = append(opts.Tokens, api.Token{Name: t.Name, Role: role, Value: v})
	}
	for i, w := range f.Alerts.Webhooks {
		var to time.Duration
		if w.Timeout != "" {
			if to, err = time.ParseDuration(w.Timeout); err != nil {
				return &usageError{msg: fmt.Sprintf("%s: alerts.webhooks[%d].timeout %q: %v", path, i, w.Timeout, err)}
			}
		}
		opts.Webhooks = append(opts.Webhooks, alert.Webhook{Name: w.Name, URL: w.URL, Headers: w.Headers, Timeout: to})
	}
	return nil
}
