package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/backbone-etl/backbone/internal/config"
)

func TestLoadRuns(t *testing.T) {
	const base = "source: {type: csv, path: a.csv, schema: {id: int}}\nsink: {type: stdout}\n"
	tests := []struct {
		name, src string
		want      config.Runs
		wantErr   string
	}{
		{name: "defaults", src: base, want: config.DefaultRuns},
		{name: "all set", src: base + `schedule: every 30s
catch_up: all
on_bad_version: rollback
runs: {timeout: 2m, retries: 5, backoff: 1s, max_backoff: 1m, quarantine_after: 0, concurrency: 2}
`, want: config.Runs{CatchUp: "all", OnBadVersion: "rollback", Timeout: 2 * time.Minute, Retries: 5,
			Backoff: time.Second, MaxBackoff: time.Minute, QuarantineAfter: 0, Concurrency: 2}},
		{name: "bad catch_up", src: base + "catch_up: sometimes\n", wantErr: "p.yaml:3:11"},
		{name: "bad timeout", src: base + "runs: {timeout: soon}\n", wantErr: "p.yaml:3:17"},
		{name: "unknown runs field", src: base + "runs: {retrys: 3}\n", wantErr: `did you mean "retries"`},
		{name: "zero concurrency", src: base + "runs: {concurrency: 0}\n", wantErr: "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := load(t, tt.src, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load: %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, p.Runs, cmpopts.IgnoreFields(config.Runs{}, "SchedulePos")); diff != "" {
				t.Errorf("Runs (-want +got):\n%s", diff)
			}
		})
	}
}
