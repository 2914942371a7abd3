package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/backbone-etl/backbone/internal/api"
)

// client talks to a running `backbone serve`.
type client struct {
	base, token string
	http        *http.Client
}

func (a *app) client(server, token string) *client {
	if server == "" {
		server, _ = a.io.Env("BACKBONE_SERVER")
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	if token == "" {
		token, _ = a.io.Env("BACKBONE_TOKEN")
	}
	return &client{base: strings.TrimSuffix(server, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// APIError is an answer of the server other than 2xx.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Status, e.Msg) }

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errServerUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &APIError{Status: resp.StatusCode, Msg: e.Error}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

var errServerUnreachable = &unreachable{}

type unreachable struct{}

func (*unreachable) Error() string { return "backbone serve unreachable" }

func clientFlags(cmd *cobra.Command, server, token *string) {
	cmd.Flags().StringVar(server, "server", "", "URL of backbone serve (default $BACKBONE_SERVER or http://127.0.0.1:8080)")
	cmd.Flags().StringVar(token, "token", "", "API token (default $BACKBONE_TOKEN)")
}

func (a *app) statusCmd() *cobra.Command {
	var server, token string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [PIPELINE]",
		Short: "Show the pipelines of a running backbone serve: status, last and next run, freshness",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.client(server, token)
			var ps []api.Pipeline
			if len(args) == 1 {
				var p api.PipelineDetail
				if err := c.do(cmd.Context(), "GET", "/api/v1/pipelines/"+url.PathEscape(args[0]), nil, &p); err != nil {
					return err
				}
				ps = append(ps, p.Pipeline)
			} else if err := c.do(cmd.Context(), "GET", "/api/v1/pipelines", nil, &ps); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.io.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(ps)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PIPELINE\tSTATUS\tLAST RUN\tWRITTEN\tREJECTED\tNEXT RUN\tFRESHNESS")
			for _, p := range ps {
				last, written, rejected, next, fresh := "-", "-", "-", "-", "-"
				if p.LastRun != nil {
					last = p.LastRun.Status + " " + p.LastRun.Start.Local().Format("2006-01-02 15:04:05")
					written, rejected = fmt.Sprint(p.LastRun.Written), fmt.Sprint(p.LastRun.Rejected)
				}
				if p.NextRun != nil {
					next = p.NextRun.Local().Format("2006-01-02 15:04:05")
				}
				if p.FreshnessAgeSeconds != nil {
					fresh = fmt.Sprintf("%s / %s", (time.Duration(*p.FreshnessAgeSeconds) * time.Second).String(),
						(time.Duration(p.FreshnessSLOSeconds) * time.Second).String())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Status, last, written, rejected, next, fresh)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, p := range ps {
				if p.Problem != "" {
					fmt.Fprintf(a.io.Out, "%s: %s\n", p.Name, p.Problem)
				}
			}
			return nil
		},
	}
	clientFlags(cmd, &server, &token)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) triggerCmd() *cobra.Command {
	var server, token string
	cmd := &cobra.Command{
		Use:   "trigger PIPELINE",
		Short: "Run a pipeline of a running backbone serve now",
		Args:  cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t api.Triggered
			if err := a.client(server, token).do(cmd.Context(), "POST", "/api/v1/pipelines/"+url.PathEscape(args[0])+"/trigger", nil, &t); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Out, "queued a run of %s\n", t.Pipeline)
			return nil
		},
	}
	clientFlags(cmd, &server, &token)
	return cmd
}

func (a *app) backfillCmd() *cobra.Command {
	var server, token, from, to string
	cmd := &cobra.Command{
		Use:   "backfill PIPELINE --from TIME --to TIME",
		Short: "Run every logical time of a pipeline's schedule in a range, without moving its live cursor",
		Args:  cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.BackfillRequest
			var err error
			if req.From, err = time.Parse(time.RFC3339, from); err != nil {
				return &usageError{msg: fmt.Sprintf("--from %q: want an RFC 3339 time like 2024-03-01T00:00:00Z", from)}
			}
			if req.To, err = time.Parse(time.RFC3339, to); err != nil {
				return &usageError{msg: fmt.Sprintf("--to %q: want an RFC 3339 time like 2024-03-02T00:00:00Z", to)}
			}
			var t api.Triggered
			if err := a.client(server, token).do(cmd.Context(), "POST", "/api/v1/pipelines/"+url.PathEscape(args[0])+"/backfill", req, &t); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Out, "queued %d backfill run(s) of %s\n", len(t.LogicalTimes), t.Pipeline)
			for _, lt := range t.LogicalTimes {
				fmt.Fprintf(a.io.Out, "  %s\n", lt.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	clientFlags(cmd, &server, &token)
	cmd.Flags().StringVar(&from, "from", "", "first logical time (RFC 3339)")
	cmd.Flags().StringVar(&to, "to", "", "last logical time (RFC 3339)")
	return cmd
}

func (a *app) pauseCmd(resume bool) *cobra.Command {
	var server, token string
	verb := "pause"
	short := "Pause a pipeline of a running backbone serve: no new run starts"
	if resume {
		verb, short = "resume", "Resume a paused or quarantined pipeline of a running backbone serve"
	}
	cmd := &cobra.Command{
		Use:   verb + " PIPELINE",
		Short: short,
		Args:  cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.PipelineDetail
			if err := a.client(server, token).do(cmd.Context(), "POST", "/api/v1/pipelines/"+url.PathEscape(args[0])+"/"+verb, nil, &p); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Out, "%s: %s\n", p.Name, p.Status)
			return nil
		},
	}
	clientFlags(cmd, &server, &token)
	return cmd
}

func (a *app) versionsCmd() *cobra.Command {
	var server, token, show string
	cmd := &cobra.Command{
		Use:   "versions PIPELINE",
		Short: "List the versions of a pipeline that ran in a backbone serve, good and bad; --show HASH prints one",
		Args:  cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.client(server, token)
			base := "/api/v1/pipelines/" + url.PathEscape(args[0]) + "/versions"
			var vs []api.Version
			if err := c.do(cmd.Context(), "GET", base, nil, &vs); err != nil {
				return err
			}
			if show != "" {
				var match []string
				for _, v := range vs {
					if strings.HasPrefix(v.Hash, show) {
						match = append(match, v.Hash)
					}
				}
				if len(match) != 1 {
					return &usageError{msg: fmt.Sprintf("--show %q names %d versions of %s, want 1", show, len(match), args[0])}
				}
				var v api.Version
				if err := c.do(cmd.Context(), "GET", base+"/"+url.PathEscape(match[0]), nil, &v); err != nil {
					return err
				}
				fmt.Fprint(a.io.Out, v.Content)
				return nil
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tFIRST SEEN\tLAST SEEN\tSTATUS\tCURRENT\tREASON")
			for _, v := range vs {
				cur := ""
				if v.Current {
					cur = "*"
				}
				st := v.Status
				if st == "" {
					st = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Hash[:min(12, len(v.Hash))], v.FirstSeen.Local().Format("2006-01-02 15:04:05"),
					v.LastSeen.Local().Format("2006-01-02 15:04:05"), st, cur, v.Reason)
			}
			return tw.Flush()
		},
	}
	clientFlags(cmd, &server, &token)
	cmd.Flags().StringVar(&show, "show", "", "print the content of this version (a hash, or the start of one)")
	return cmd
}
