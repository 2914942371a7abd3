// Package e2e tests the backbone binary from the outside: CLI transcripts,
// bad input, crash (SIGKILL) tests with row counts and checksums, database
// restarts in the middle of a run (BACKBONE_RESTART_TESTS=1 only: they stop
// shared servers), incremental cursor edge cases, and rows a database
// refuses. The crash and restart tests load 1M rows; BACKBONE_CRASH_ROWS
// and BACKBONE_DB_CRASH_ROWS set other sizes.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the expected output of transcripts")

// binary is the backbone binary built once for all tests; tool does their
// heavy lifting (data, digests) outside the race-instrumented test process.
var binary, tool string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "backbone-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "backbone")
	tool = filepath.Join(dir, "tool")
	for out, pkg := range map[string]string{binary: "../cmd/backbone", tool: "./tool"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result of one command.
type result struct {
	out  string // stdout then stderr
	code int
	rss  int64 // peak resident set size in bytes
}

// backbone runs the binary in dir with extra environment.
func backbone(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("backbone %v: %v", args, err)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024
	}
	return result{out: stdout.String() + stderr.String(), code: code, rss: rss}
}

// runTool runs the e2e tool and returns its standard output.
func runTool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(tool, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("tool %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("tool %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

var normalizers = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\d{8}T\d{6}Z-[0-9a-f]{12}`), "RUNID"},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z`), "TIME"},
	{regexp.MustCompile(`in \d+(\.\d+)?(ns|µs|ms|s|m)(\d+(\.\d+)?(ms|s))?`), "in DURATION"},
	{regexp.MustCompile(`(rows/s\s+)[\d.]+[kM]?`), "${1}N"},
	{regexp.MustCompile(`  +`), " "},
}

func normalize(s string) string {
	for _, n := range normalizers {
		s = n.re.ReplaceAllString(s, n.repl)
	}
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.TrimRight(l, " "))
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// archive is a txtar-like file: a comment, then "-- name --" sections.
type archive struct {
	comment string
	files   []archiveFile
}

type archiveFile struct {
	name string
	data string
}

func parseArchive(data string) archive {
	var a archive
	cur := -1
	var b strings.Builder
	flush := func() {
		if cur < 0 {
			a.comment = b.String()
		} else {
			a.files[cur].data = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(data, "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			flush()
			a.files = append(a.files, archiveFile{name: strings.TrimSpace(trimmed[3 : len(trimmed)-3])})
			cur = len(a.files) - 1
			continue
		}
		b.WriteString(line)
	}
	flush()
	return a
}

func (a archive) format() string {
	var b strings.Builder
	b.WriteString(a.comment)
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n%s", f.name, f.data)
	}
	return b.String()
}

// TestTranscripts runs testdata/*.txtar: the files are written into a fresh
// directory, then each "$ backbone ..." line of the "transcript" section is
// run there and its normalized output and exit code compared.
func TestTranscripts(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no transcripts (%v)", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(string(raw))
			dir := t.TempDir()
			tr := -1
			for i, f := range a.files {
				if f.name == "transcript" {
					tr = i
					continue
				}
				p := filepath.Join(dir, f.name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tr < 0 {
				t.Fatal("no transcript section")
			}
			var got strings.Builder
			for _, line := range strings.Split(a.files[tr].data, "\n") {
				if !strings.HasPrefix(line, "$ backbone ") {
					continue
				}
				args := strings.Fields(strings.TrimPrefix(line, "$ backbone "))
				res := backbone(t, dir, nil, args...)
				fmt.Fprintf(&got, "%s\n", line)
				if out := normalize(res.out); out != "" {
					fmt.Fprintf(&got, "%s\n", out)
				}
				fmt.Fprintf(&got, "[exit %d]\n", res.code)
			}
			want := a.files[tr].data
			if got.String() != want {
				if *update {
					a.files[tr].data = got.String()
					if err := os.WriteFile(path, []byte(a.format()), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				t.Errorf("transcript differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", got.String(), want)
			}
		})
	}
}
