package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
)

// poison rewrites the rows of an orders file whose order_id is named:
// check:ID sets qty to 1000 (for a CHECK constraint on qty to refuse),
// long:ID sets currency to "EURO" (too long for a varchar(3) column).
func poison(path string, specs []string) error {
	kinds := map[string]string{}
	for _, s := range specs {
		kind, id, ok := strings.Cut(s, ":")
		if !ok || (kind != "check" && kind != "long") {
			return fmt.Errorf("poison %q: want check:ID or long:ID", s)
		}
		kinds[id] = kind
	}
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	done := 0
	for sc.Scan() {
		line := sc.Text()
		id, _, _ := strings.Cut(line, ",")
		if kind, ok := kinds[id]; ok {
			f := strings.Split(line, ",")
			if len(f) != 7 {
				out.Close()
				return fmt.Errorf("poison: row %s has %d fields", id, len(f))
			}
			switch kind {
			case "check":
				f[2] = "1000"
			case "long":
				f[4] = "EURO"
			}
			line = strings.Join(f, ",")
			done++
		}
		w.WriteString(line)
		w.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		out.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if done != len(kinds) {
		return fmt.Errorf("poison: %d of %d rows found in %s", done, len(kinds), path)
	}
	return os.Rename(tmp, path)
}

// sqlDigest prints the row count, the count of distinct first-column
// values and a SHA-256 over every value of every row, in the query's order.
// Values are rendered canonically so that the same data hashes the same in
// PostgreSQL, MariaDB and SQLite: instants in UTC RFC 3339, decimals
// without trailing zeros.
func sqlDigest(driver, dsn, query string) error {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	h := sha256.New()
	keys := map[string]struct{}{}
	var count int64
	var b []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		count++
		b = b[:0]
		for i, v := range vals {
			c := canonical(v)
			if i == 0 {
				keys[c] = struct{}{}
			}
			b = append(b, c...)
			b = append(b, 0)
		}
		b = append(b, '\n')
		h.Write(b)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Println(count, len(keys), hex.EncodeToString(h.Sum(nil)))
	return nil
}

var (
	decimalText = regexp.MustCompile(`^-?[0-9]+\.[0-9]+$`)
	timeText    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}`)
)

func canonical(v any) string {
	switch x := v.(type) {
	case nil:
		return `\N`
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return canonicalText(string(x))
	case string:
		return canonicalText(x)
	}
	return fmt.Sprint(v)
}

func canonicalText(s string) string {
	if decimalText.MatchString(s) {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		if s == "-0" {
			s = "0"
		}
		return s
	}
	if timeText.MatchString(s) {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	return s
}

// deadKeys prints the step and the order_id of every dead letter of a
// pipeline, sorted: the record is a CSV line or a JSON object.
func deadKeys(stateDB, pipeline string) error {
	st, err := sqlitestate.Open(context.Background(), stateDB)
	if err != nil {
		return err
	}
	defer st.Close()
	dls, err := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: pipeline})
	if err != nil {
		return err
	}
	var lines []string
	for _, d := range dls {
		key := ""
		rec := bytes.TrimSpace(d.Record)
		if bytes.HasPrefix(rec, []byte("{")) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(rec, &m); err != nil {
				return fmt.Errorf("dead letter %d: %w", d.ID, err)
			}
			key = string(m["order_id"])
		} else {
			k, _, _ := bytes.Cut(rec, []byte(","))
			key = string(k)
		}
		lines = append(lines, d.Step+" "+key)
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}

// runs prints a pipeline's runs, oldest first.
func runs(stateDB, pipeline string) error {
	st, err := sqlitestate.Open(context.Background(), stateDB)
	if err != nil {
		return err
	}
	defer st.Close()
	rs, err := st.Runs(context.Background(), state.RunFilter{Pipeline: pipeline})
	if err != nil {
		return err
	}
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		fmt.Println(r.Status, r.Read, r.Written, r.Rejected, r.Filtered)
	}
	return nil
}

// copyIn loads CSV files with a header line into a PostgreSQL table.
func copyIn(dsn, table string, files []string) error {
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, f := range files {
		in, err := os.Open(f)
		if err != nil {
			return err
		}
		_, err = conn.CopyFrom(ctx, in, "COPY "+table+" FROM STDIN (FORMAT csv, HEADER true)")
		in.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}
