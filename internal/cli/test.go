package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/fixture"
)

func (a *app) testCmd() *cobra.Command {
	var junit string
	cmd := &cobra.Command{
		Use:   "test PIPELINE.yaml|DIR...",
		Short: "Run a pipeline's fixtures: input records in, expected output and rejects out; no service touched",
		Long: `Test runs the fixtures of each pipeline: its inline tests: and those of PIPELINE.test.yaml
beside it. Each test gives input records, lookup rows and the run's logical time, and expects
output records and rejects. The source, the lookups and the sink are replaced by in-memory ones,
so a test never reads or writes a real file, database or service. A failure prints a diff by
record (by the sink's key when it has one, else by position) and by field.

Given a directory, test runs every pipeline under it that has tests.
Exit codes: 0 every test passed, 1 a test failed, 2 an invalid pipeline or fixture.`,
		Args: cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &testRun{a: a}
			for _, arg := range args {
				files, explicit, err := testFiles(arg)
				if err != nil {
					fmt.Fprintf(a.io.Err, "%s: %v\n", arg, err)
					r.code = max(r.code, exitCode(cmd.Context(), err))
					continue
				}
				if len(files) == 0 {
					fmt.Fprintf(a.io.Err, "%s: no pipeline with tests\n", arg)
					r.code = max(r.code, ExitConfig)
				}
				for _, f := range files {
					r.file(cmd, f, explicit)
				}
			}
			fmt.Fprintf(a.io.Out, "%d test(s): %d passed, %d failed", r.passed+r.failed, r.passed, r.failed)
			if r.invalid > 0 {
				fmt.Fprintf(a.io.Out, "; %d file(s) invalid", r.invalid)
			}
			fmt.Fprintln(a.io.Out)
			if junit != "" {
				var buf bytes.Buffer
				if err := fixture.WriteJUnit(&buf, r.suites); err != nil {
					return err
				}
				if err := os.WriteFile(junit, buf.Bytes(), 0o644); err != nil {
					return err
				}
			}
			if r.code != ExitOK {
				return &silentError{code: r.code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&junit, "junit", "", "also write the results as JUnit XML to this file")
	return cmd
}

type testRun struct {
	a                       *app
	suites                  []fixture.Suite
	passed, failed, invalid int
	code                    int
}

// file runs the tests of one pipeline file.
func (r *testRun) file(cmd *cobra.Command, path string, explicit bool) {
	a := r.a
	opts := config.Options{Registry: a.registry, Env: a.io.Env}
	suite := fixture.Suite{File: path}
	seen := map[string]bool{} // a pipeline's own errors come back from each of its tests
	invalid := func(err error) bool {
		var errs config.Errors
		if !errors.As(err, &errs) {
			return false
		}
		for _, e := range errs {
			if msg := e.Error(); !seen[msg] {
				seen[msg] = true
				fmt.Fprintln(a.io.Err, msg)
				suite.Error += msg + "\n"
			}
		}
		r.code = max(r.code, ExitConfig)
		return true
	}
	defer func() {
		if suite.Error != "" {
			r.invalid++
		}
		r.suites = append(r.suites, suite)
	}()
	p, err := config.LoadFile(path, opts)
	if err != nil {
		if !invalid(err) {
			fmt.Fprintf(a.io.Err, "%s: %v\n", path, err)
			suite.Error = err.Error()
			r.code = max(r.code, exitCode(cmd.Context(), err))
		}
		return
	}
	suite.Pipeline = p.Name
	tests := p.Tests
	tf := config.TestFileName(path)
	if _, err := os.Stat(tf); err == nil {
		more, err := config.LoadTestFile(tf, opts)
		if err != nil {
			if !invalid(err) {
				fmt.Fprintf(a.io.Err, "%s: %v\n", tf, err)
				suite.Error = err.Error()
				r.code = max(r.code, exitCode(cmd.Context(), err))
			}
			return
		}
		tests = append(tests, more...)
	}
	if len(tests) == 0 {
		if explicit {
			fmt.Fprintf(a.io.Err, "%s: no tests: add tests: to the pipeline, or write them in %s\n", path, tf)
			r.code = max(r.code, ExitConfig)
		}
		return
	}
	for _, t := range tests {
		out, err := fixture.Run(cmd.Context(), p, t)
		if err != nil {
			fmt.Fprintf(a.io.Out, "ERR  %s: %s\n", path, t.Name)
			if !invalid(err) {
				msg := p.Redactor.Redact(err.Error())
				fmt.Fprintf(a.io.Err, "%s: %s\n", path, msg)
				suite.Error += msg + "\n"
				r.code = max(r.code, exitCode(cmd.Context(), err))
			}
			continue
		}
		suite.Outcomes = append(suite.Outcomes, out)
		if out.Passed() {
			r.passed++
			fmt.Fprintf(a.io.Out, "ok   %s: %s\n", path, t.Name)
			continue
		}
		r.failed++
		r.code = max(r.code, ExitFailed)
		fmt.Fprintf(a.io.Out, "FAIL %s: %s (%s)\n", path, t.Name, t.Pos)
		for _, line := range out.Failures {
			fmt.Fprintf(a.io.Out, "       %s\n", line)
		}
	}
}

// testFiles lists the pipelines to test: the file given, or under a
// directory every pipeline file that has tests (inline, or a
// PIPELINE.test.yaml beside it). explicit is true for a file.
func testFiles(arg string) (files []string, explicit bool, err error) {
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, false, err
	}
	if !fi.IsDir() {
		return []string{arg}, true, nil
	}
	err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != arg && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if isPipelineFile(d.Name()) && hasTests(path) {
			files = append(files, path)
		}
		return nil
	})
	return files, false, err
}

func isPipelineFile(name string) bool {
	if strings.HasSuffix(name, ".test.yaml") || strings.HasSuffix(name, ".test.yml") {
		return false
	}
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// hasTests tells, without loading it, whether a file has tests: a fixture
// file beside it or a top-level tests: key.
func hasTests(path string) bool {
	if _, err := os.Stat(config.TestFileName(path)); err == nil {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "tests:") {
			return true
		}
	}
	return false
}
