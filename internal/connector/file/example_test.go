package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/file"
	"github.com/backbone-etl/backbone/internal/record"
)

// Example reads a CSV file through the registered csv source.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "orders.csv"), []byte("id,total\n1,9.90\n2,oops\n"), 0o644)

	r := connector.NewRegistry()
	file.Register(r)
	e, _ := r.Get(connector.KindSource, "csv")
	p, _ := connector.ParamsFromYAML("path: '*.csv'\nschema: { id: int, total: decimal }")
	src, _ := e.Source(p)

	ctx := context.Background()
	env := &connector.Env{Dir: dir, RunTime: time.Now(), Limits: record.DefaultLimits}
	tasks, _ := src.Plan(ctx, env)
	rd, _ := src.Open(ctx, env, tasks[0], nil)
	defer rd.Close()
	b, _ := rd.Next(ctx)
	fmt.Println(tasks[0].Key, b.Rows)
	fmt.Println(b.Rejects[0].Line, b.Rejects[0].Err)
	// Output:
	// orders.csv [[1 9.90]]
	// 3 field "total": value "oops" is not a valid decimal: not a decimal number
}
