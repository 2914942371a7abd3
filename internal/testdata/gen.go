// Package testdata generates deterministic orders, customers and FX rates
// for the quickstart, the benchmarks and the fault tests. The same seed and
// sizes always produce the same bytes.
//
//	testdata.WriteOrders(w, testdata.Orders{Rows: 1000, Bad: 0.01, Seed: 1})
package testdata

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// Orders describes an orders CSV file.
type Orders struct {
	Rows      int     // data rows, malformed ones included
	Bad       float64 // fraction of malformed rows, of several kinds
	Seed      uint64
	Customers int // customer ids are drawn from 1..Customers; 0 means 1000
	FirstID   int // first order id; 0 means 1
	// Unknown is the fraction of rows whose customer does not exist.
	Unknown float64
}

// Currencies are the currencies orders use; FX has a rate for each.
var Currencies = []string{"USD", "EUR", "GBP", "JPY", "CHF"}

var rates = map[string]string{"USD": "1", "EUR": "1.0842", "GBP": "1.2713", "JPY": "0.006712", "CHF": "1.1305"}

var statuses = []string{"paid", "paid", "paid", "shipped", "shipped", "cancelled"}

// OrdersHeader is the header line of an orders file.
const OrdersHeader = "order_id,customer_id,qty,unit_price,currency,status,ordered_at"

// BadKinds names the kinds of malformed rows, in the order they rotate.
var BadKinds = []string{"bad int", "bad decimal", "bad timestamp", "wrong column count", "non-positive qty", "unbalanced quote"}

// WriteOrders writes the header and o.Rows rows. Malformed rows rotate
// through BadKinds; an unbalanced quote is only written as the last row, since
// it swallows the rest of the file.
func WriteOrders(w io.Writer, o Orders) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if o.Customers == 0 {
		o.Customers = 1000
	}
	if o.FirstID == 0 {
		o.FirstID = 1
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x0bac))
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	fmt.Fprintln(bw, OrdersHeader)
	badKind := 0
	var line []byte
	for i := 0; i < o.Rows; i++ {
		id := o.FirstID + i
		cust := 1 + rng.IntN(o.Customers)
		if o.Unknown > 0 && rng.Float64() < o.Unknown {
			cust = o.Customers + 1 + rng.IntN(1000)
		}
		qty := 1 + rng.IntN(20)
		cents := 100 + rng.IntN(99900)
		cur := Currencies[rng.IntN(len(Currencies))]
		st := statuses[rng.IntN(len(statuses))]
		ts := base.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
		line = line[:0]
		line = strconv.AppendInt(line, int64(id), 10)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(cust), 10)
		line = append(line, ',')
		price := strconv.Itoa(cents/100) + "." + fmt.Sprintf("%02d", cents%100)
		qtyText := strconv.Itoa(qty)
		tsText := ts.Format("2006-01-02T15:04:05.000000Z07:00")
		extra := ""
		if o.Bad > 0 && rng.Float64() < o.Bad {
			kind := BadKinds[badKind%len(BadKinds)]
			badKind++
			if kind == "unbalanced quote" {
				if i != o.Rows-1 {
					kind = "bad int"
				}
			}
			switch kind {
			case "bad int":
				qtyText = "seven"
			case "bad decimal":
				price = "12.50.0"
			case "bad timestamp":
				tsText = "2026-13-45 25:61"
			case "wrong column count":
				extra = ",surplus"
			case "non-positive qty":
				qtyText = "-" + qtyText
			case "unbalanced quote":
				st = `"paid`
			}
		}
		line = append(line, qtyText...)
		line = append(line, ',')
		line = append(line, price...)
		line = append(line, ',')
		line = append(line, cur...)
		line = append(line, ',')
		line = append(line, st...)
		line = append(line, ',')
		line = append(line, tsText...)
		line = append(line, extra...)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteCustomers writes n customers with ids 1..n.
func WriteCustomers(w io.Writer, n int, seed uint64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 0xc057))
	regions := []string{"emea", "amer", "apac"}
	tiers := []string{"gold", "silver", "bronze"}
	fmt.Fprintln(bw, "customer_id,name,region,tier")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(bw, "%d,Customer %d,%s,%s\n", i, i, regions[rng.IntN(len(regions))], tiers[rng.IntN(len(tiers))])
	}
	return bw.Flush()
}

// WriteFX writes the FX rates as a JSON object keyed by currency.
func WriteFX(w io.Writer) error {
	_, err := io.WriteString(w, "{\n")
	if err != nil {
		return err
	}
	for i, c := range Currencies {
		sep := ","
		if i == len(Currencies)-1 {
			sep = ""
		}
		if _, err := fmt.Fprintf(w, "  %q: {\"rate\": %s}%s\n", c, rates[c], sep); err != nil {
			return err
		}
	}
	_, err = io.WriteString(w, "}\n")
	return err
}
