package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// whoami names the caller's token and role, and nothing else: the value of
// the token never comes back.
func TestWhoami(t *testing.T) {
	srv, fb := newServer(t)
	tests := []struct {
		name, token string
		code        int
		want        Identity
	}{
		{"admin", adminTok, 200, Identity{Name: "ops", Role: RoleAdmin}},
		{"read-only", readTok, 200, Identity{Name: "viewer", Role: RoleRead}},
		{"no token", "", 401, Identity{}},
		{"wrong token", "nope", 401, Identity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, srv, "GET", "/api/v1/whoami", tt.token, "")
			if code != tt.code {
				t.Fatalf("status %d, want %d (%s)", code, tt.code, body)
			}
			if code != 200 {
				return
			}
			var got Identity
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%v in %s", err, body)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if strings.Contains(body, adminTok) || strings.Contains(body, readTok) {
				t.Errorf("the token's value is in the answer: %s", body)
			}
		})
	}
	if len(fb.changes) != 0 {
		t.Errorf("whoami changed something: %v", fb.changes)
	}
}

func TestOpenAPIIdentitySchema(t *testing.T) {
	doc := loadSpec(t)
	var got []string
	for p := range doc.Components.Schemas["Identity"].Properties {
		got = append(got, p)
	}
	sort.Strings(got)
	if want := jsonFields(reflect.TypeOf(Identity{})); !slices.Equal(got, want) {
		t.Errorf("schema Identity has %v, the Go type encodes %v", got, want)
	}
}
