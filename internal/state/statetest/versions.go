package statetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/state"
)

// testVersions: a version is stored once with its content; saving it again
// moves only LastSeen; statuses stick; lists are per pipeline, newest first.
func testVersions(t *testing.T, s state.Store) {
	ctx := t.Context()
	v1 := state.Version{Pipeline: "orders", Hash: "sha256:1", Content: []byte("name: orders\n\x00\xff"), LastSeen: at(1)}
	v2 := state.Version{Pipeline: "orders", Hash: "sha256:2", Content: []byte("name: orders # v2\n"), LastSeen: at(2)}
	other := state.Version{Pipeline: "other", Hash: "sha256:1", Content: []byte("name: other\n"), LastSeen: at(3)}
	for _, v := range []state.Version{v1, v2, other} {
		if err := s.SaveVersion(ctx, v); err != nil {
			t.Fatalf("SaveVersion %s: %v", v.Hash, err)
		}
	}
	if err := s.MarkVersion(ctx, "orders", "sha256:1", state.VersionGood, ""); err != nil {
		t.Fatalf("MarkVersion: %v", err)
	}
	// Seen again later, with other content and status: only LastSeen moves.
	again := v1
	again.Content, again.LastSeen, again.Status = []byte("changed"), at(4), state.VersionBad
	if err := s.SaveVersion(ctx, again); err != nil {
		t.Fatalf("SaveVersion again: %v", err)
	}
	got, err := s.Version(ctx, "orders", "sha256:1")
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	want := state.Version{Pipeline: "orders", Hash: "sha256:1", Content: v1.Content,
		FirstSeen: at(1), LastSeen: at(4), Status: state.VersionGood}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Version (-want +got):\n%s", diff)
	}
	checkUTC(t, "FirstSeen", got.FirstSeen)

	if err := s.MarkVersion(ctx, "orders", "sha256:2", state.VersionBad, "error budget exceeded"); err != nil {
		t.Fatalf("MarkVersion bad: %v", err)
	}
	list, err := s.Versions(ctx, "orders")
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	var hashes []string
	for _, v := range list {
		hashes = append(hashes, v.Hash+"/"+v.Status+"/"+v.Reason)
	}
	if diff := cmp.Diff([]string{"sha256:2/bad/error budget exceeded", "sha256:1/good/"}, hashes); diff != "" {
		t.Errorf("Versions (-want +got):\n%s", diff)
	}

	if _, err := s.Version(ctx, "orders", "sha256:9"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Version of an unknown hash: got %v, want ErrNotFound", err)
	}
	if err := s.MarkVersion(ctx, "nobody", "sha256:1", state.VersionGood, ""); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("MarkVersion of an unknown version: got %v, want ErrNotFound", err)
	}
	if err := s.SaveVersion(ctx, state.Version{Pipeline: "orders"}); err == nil {
		t.Error("SaveVersion without a hash: no error")
	}
	if list, err := s.Versions(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Errorf("Versions of an unknown pipeline: %v, %v", list, err)
	}
}
