#!/usr/bin/env bash
# Benchmarks Backbone against Miller and a bare encoding/csv read loop on the
# same generated data, and prints one table: rows/s, ratios and peak RSS.
#
#   bash bench/run.sh                          # 1M rows
#   BENCH_ROWS="1000000 10000000" bash bench/run.sh
#
# Scenarios:
#   a  CSV → filter + map → JSONL
#   b  a, plus enrichment from a 100k-row customers CSV and an FX JSON
#   c  CSV → SQLite upsert
set -euo pipefail
cd "$(dirname "$0")/.."
rows_list=${BENCH_ROWS:-1000000}
data=bench/data
out=bench/out
mkdir -p "$data" "$out"

if ! command -v mlr >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then
  echo "installing miller and time (Debian packages)" >&2
  (apt-get update -qq && apt-get install -y -qq miller time) >/dev/null
fi
go build -o "$out/backbone" ./cmd/backbone
go build -o "$out/readloop" ./bench/readloop
go build -o "$out/gen" ./bench/gen

# measure NAME CMD...: runs CMD under /usr/bin/time, prints "seconds rss_kib".
measure() {
  local log="$out/time.log"
  /usr/bin/time -v -o "$log" "$@" >/dev/null 2>"$out/stderr.log" || { cat "$out/stderr.log" >&2; return 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  # wall is [h:]m:ss.xx
  secs=$(awk -v t="$wall" 'BEGIN { n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }')
  echo "$secs $rss"
}

pipeline() { # scenario rows
  local s=$1 rows=$2 f="$out/$1-$2.yaml"
  local enrich="" lookups="" sink
  if [ "$s" = b ]; then
    lookups="lookups:
  customers: {type: csv, path: $PWD/$data/customers-100000.csv, key: customer_id, schema: {customer_id: int, name: string, region: string, tier: string}}
  fx: {type: json, path: $PWD/$data/fx.json, key: currency, schema: {currency: string, rate: decimal}}"
    enrich="  - enrich: {lookup: customers, on: customer_id, fields: [region, tier], missing: null}
  - map:
      total_usd: qty * unit_price * lookup(\"fx\", currency).rate"
  fi
  if [ "$s" = c ]; then
    sink="sink: {type: sqlite, path: $PWD/$out/warehouse-$rows.db, table: orders, mode: upsert, key: [order_id], create: true}"
    rm -f "$out/warehouse-$rows.db"*
  else
    sink="sink: {type: jsonl, path: $PWD/$out/$s-$rows.jsonl}"
  fi
  cat >"$f" <<YAML
name: bench_${s}_${rows}
state: $PWD/$out/state-$s-$rows.db
source:
  type: csv
  path: $PWD/$data/orders-$rows.csv
  schema: {order_id: int, customer_id: int, qty: int, unit_price: decimal, currency: string, status: string, ordered_at: timestamp}
$lookups
steps:
  - filter: status != "cancelled"
  - map: {total: qty * unit_price}
$enrich
$sink
YAML
  rm -f "$out/state-$s-$rows.db"*
  echo "$f"
}

printf '\n%-10s %-34s %12s %10s %10s %10s\n' rows scenario rows/s vs_miller vs_loop rss_MiB
for rows in $rows_list; do
  [ -f "$data/orders-$rows.csv" ] || "$out/gen" -dir "$data" -rows "$rows" -customers 100000 >/dev/null
  read -r loop_s loop_rss < <(measure "$out/readloop" "$data/orders-$rows.csv")
  read -r mlr_s mlr_rss < <(measure mlr --icsv --ojsonl filter '$status != "cancelled"' then put '$total = $qty * $unit_price' "$data/orders-$rows.csv")
  loop_rate=$(awk -v r="$rows" -v s="$loop_s" 'BEGIN { printf "%d", r / s }')
  mlr_rate=$(awk -v r="$rows" -v s="$mlr_s" 'BEGIN { printf "%d", r / s }')
  printf '%-10s %-34s %12s %10s %10s %10d\n' "$rows" "encoding/csv read loop" "$loop_rate" "-" "1.00" $((loop_rss / 1024))
  printf '%-10s %-34s %12s %10s %10s %10d\n' "$rows" "miller: filter + put → JSONL" "$mlr_rate" "1.00" \
    "$(awk -v a="$mlr_rate" -v b="$loop_rate" 'BEGIN { printf "%.2f", a / b }')" $((mlr_rss / 1024))
  a_s=""
  for s in a b c; do
    f=$(pipeline "$s" "$rows")
    read -r bb_s bb_rss < <(measure "$out/backbone" run -q "$f")
    [ "$s" = a ] && a_s=$bb_s
    rate=$(awk -v r="$rows" -v s="$bb_s" 'BEGIN { printf "%d", r / s }')
    case $s in
      a) name="backbone a: filter+map → JSONL" ;;
      b) name="backbone b: a + enrich (100k, fx)" ;;
      c) name="backbone c: → SQLite upsert" ;;
    esac
    extra=""
    [ "$s" = b ] && extra=$(awk -v b="$bb_s" -v a="$a_s" 'BEGIN { printf "  (time %.2f× of a)", b / a }')
    printf '%-10s %-34s %12s %10s %10s %10d%s\n' "$rows" "$name" "$rate" \
      "$(awk -v a="$rate" -v b="$mlr_rate" 'BEGIN { printf "%.2f", a / b }')" \
      "$(awk -v a="$rate" -v b="$loop_rate" 'BEGIN { printf "%.2f", a / b }')" $((bb_rss / 1024)) "$extra"
  done
done
echo
echo "targets: a ≥ 6.00× miller; b time ≤ 1.3× a; peak RSS ≤ 128 MiB at 10M rows"
