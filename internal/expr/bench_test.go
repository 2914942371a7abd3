package expr

import (
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// benchSchema is an 8-field order row.
var benchSchema = record.MustSchema(
	record.Field{Name: "order_id", Type: record.Int},
	record.Field{Name: "customer_id", Type: record.Int},
	record.Field{Name: "qty", Type: record.Int},
	record.Field{Name: "unit_price", Type: record.Decimal},
	record.Field{Name: "currency", Type: record.String},
	record.Field{Name: "status", Type: record.String},
	record.Field{Name: "score", Type: record.Float},
	record.Field{Name: "ordered_at", Type: record.Timestamp},
)

func benchRow() record.Row {
	return record.Row{int64(1001), int64(42), int64(3), record.MustDec("19.99"), "USD", "shipped", 0.75,
		time.Date(2024, 3, 10, 7, 30, 0, 0, time.UTC)}
}

func benchEval(b *testing.B, src string) {
	p, err := Compile(connector.Expr{Src: src}, Env{Schema: benchSchema})
	if err != nil {
		b.Fatal(err)
	}
	ev := p.NewEvaluator()
	row := benchRow()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ev.Eval(row); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvalFilter(b *testing.B)     { benchEval(b, `status != "cancelled"`) }
func BenchmarkEvalDecimalMul(b *testing.B) { benchEval(b, `qty * unit_price`) }
func BenchmarkEvalIntCompare(b *testing.B) { benchEval(b, `qty > 0 && customer_id != 7`) }
func BenchmarkEvalFloat(b *testing.B)      { benchEval(b, `score * 100 + qty`) }
func BenchmarkEvalLower(b *testing.B)      { benchEval(b, `lower(currency) == "usd"`) }
func BenchmarkEvalTruncate(b *testing.B) {
	benchEval(b, `truncate_time(ordered_at, "day", "America/Chicago")`)
}

// benchLookups is an fx table as bench/run.sh's scenario b reads it.
func benchLookups(b *testing.B) map[string]connector.Table {
	fx, err := connector.NewIndex(record.MustSchema(
		record.Field{Name: "currency", Type: record.String}, record.Field{Name: "rate", Type: record.Decimal}), []string{"currency"})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range [][2]string{{"USD", "1"}, {"EUR", "1.0842"}, {"GBP", "1.2713"}, {"JPY", "0.006712"}, {"CHF", "1.1305"}} {
		fx.Add(record.Row{r[0], record.MustDec(r[1])})
	}
	return map[string]connector.Table{"fx": fx}
}

func BenchmarkEvalLookupField(b *testing.B) {
	p, err := Compile(connector.Expr{Src: `qty * unit_price * lookup("fx", currency).rate`}, Env{Schema: benchSchema, Lookups: benchLookups(b)})
	if err != nil {
		b.Fatal(err)
	}
	ev := p.NewEvaluator()
	row := benchRow()
	row[4] = "GBP"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.Eval(row); err != nil {
			b.Fatal(err)
		}
	}
}
