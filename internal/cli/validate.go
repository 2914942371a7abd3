package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/engine"
)

func (a *app) validateCmd() *cobra.Command {
	var connect bool
	cmd := &cobra.Command{
		Use:   "validate PIPELINE.yaml...",
		Short: "Check pipeline files and report every error at once, as file:line:col: message",
		Long: `Validate checks each file against the component specs (unknown fields, types, required
fields), compiles every expression against the schema flowing into its step (a field that does not
exist or was removed upstream, a string multiplied by a number, a lookup that is not declared),
reports a filter or check that no record can pass and the steps it makes unreachable, and checks
that the sink's key reaches the sink. Every error is reported, each as file:line:col: message.
Lookups that declare their schema are not opened. With --connect every lookup is opened, and every
source, lookup and sink is asked whether its service is reachable and the tables and columns it
names exist. Nothing is written.
Exit 0 when every file is valid, 2 when one is not, 3 when a service is unreachable.`,
		Args: cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var all config.Errors
			code := ExitOK
			for _, path := range args {
				p, err := config.LoadFile(path, config.Options{Registry: a.registry, Env: a.io.Env})
				if err != nil {
					var errs config.Errors
					if errors.As(err, &errs) {
						all = append(all, errs...)
						continue
					}
					fmt.Fprintf(a.io.Err, "%s: %v\n", path, err)
					code = max(code, ExitEnviron)
					continue
				}
				v, err := engine.Validate(ctx, p, engine.ValidateOptions{Connect: connect})
				if err == nil && connect {
					if cerr := engine.CheckConnect(ctx, p); cerr != nil {
						var errs config.Errors
						if errors.As(cerr, &errs) {
							for _, e := range errs {
								fmt.Fprintln(a.io.Err, e.Error())
							}
							code = max(code, ExitEnviron)
							continue
						}
						err = cerr
					}
				}
				if err != nil {
					var errs config.Errors
					if errors.As(err, &errs) {
						for _, e := range errs {
							e.Msg = p.Redactor.Redact(e.Msg)
						}
						all = append(all, errs...)
						continue
					}
					fmt.Fprintf(a.io.Err, "%s: %s\n", path, p.Redactor.Redact(err.Error()))
					code = max(code, ExitEnviron)
					continue
				}
				if !v.Checked {
					fmt.Fprintf(a.io.Out, "%s: ok (pipeline %s; steps not checked: the source declares no schema and has no input yet to read one from)\n", path, p.Name)
					continue
				}
				fmt.Fprintf(a.io.Out, "%s: ok (pipeline %s)\n", path, p.Name)
			}
			if len(all) > 0 {
				fmt.Fprintln(a.io.Err, all.Error())
				fmt.Fprintf(a.io.Err, "%d error(s)\n", len(all))
				code = ExitConfig
			}
			if code != ExitOK {
				return &silentError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&connect, "connect", false, "also check that services are reachable and the tables and columns named exist")
	return cmd
}
