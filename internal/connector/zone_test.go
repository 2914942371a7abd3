package connector

import (
	"strings"
	"testing"
	"time"
)

func TestLoadZoneAndZoneOf(t *testing.T) {
	p, err := ParamsFromYAML("queue: q\nlinger: 0s\ntimezone: Mars/Olympus")
	if err != nil {
		t.Fatal(err)
	}
	if loc, err := LoadZone(p, ""); loc != nil || err != nil {
		t.Errorf("LoadZone of no setting: %v, %v", loc, err)
	}
	paris, err := LoadZone(p, "Europe/Paris")
	if err != nil || paris.String() != "Europe/Paris" {
		t.Fatalf("LoadZone: %v, %v", paris, err)
	}
	if _, err := LoadZone(p, "Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "3:") || !strings.Contains(err.Error(), `unknown timezone "Mars/Olympus"`) {
		t.Errorf("LoadZone of an unknown zone: %v; want an error at line 3", err)
	}
	env := &Env{Location: paris}
	for _, tc := range []struct {
		name string
		own  *time.Location
		env  *Env
		want *time.Location
	}{
		{"own", time.UTC, env, time.UTC},
		{"the run's", nil, env, paris},
		{"default", nil, &Env{}, time.UTC},
		{"no env", nil, nil, time.UTC},
	} {
		if got := ZoneOf(tc.own, tc.env); got != tc.want {
			t.Errorf("%s zone: %v, want %v", tc.name, got, tc.want)
		}
	}
}
