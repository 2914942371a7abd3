#!/usr/bin/env bash
# Runs the README's quickstart command twice in a scratch copy of the
# quickstart and checks what it printed: the first run loads the orders and
# rejects the malformed ones, read = written + rejected + filtered, the
# second run loads nothing twice, and the rejects are listed by dlq list.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/examples"
cp -r "$repo/examples/quickstart" "$work/examples/"
rm -f "$work/examples/quickstart/warehouse.db"*
go build -o "$work/backbone" "$repo/cmd/backbone"
cd "$work"

fail() { echo "quickstart check failed: $*"; exit 1; }
field() { awk -v k="$1" '$1 == k { print $2; exit }' <<<"$2"; }

./backbone validate examples/quickstart/pipeline.yaml || fail "validate"

first=$(./backbone run examples/quickstart/pipeline.yaml 2>&1) || fail "first run exited $?: $first"
echo "$first"
grep -q "of orders_enriched: succeeded" <<<"$first" || fail "first run did not succeed"
read=$(field read "$first"); written=$(field written "$first")
rejected=$(field rejected "$first"); filtered=$(field filtered "$first")
[ "$read" = 1200 ] || fail "read $read, want 1200"
[ "$rejected" -gt 0 ] || fail "no rejects: the malformed rows were not caught"
[ "$written" -gt 900 ] || fail "written $written"
[ $((written + rejected + filtered)) = "$read" ] || fail "read $read != written $written + rejected $rejected + filtered $filtered"

second=$(./backbone run examples/quickstart/pipeline.yaml 2>&1) || fail "second run exited $?"
echo "$second"
[ "$(field read "$second")" = 0 ] || fail "the second run read again: $(field read "$second") rows"
grep -q "2 already done" <<<"$second" || fail "the second run did not skip the done files"

dlq=$(./backbone dlq list orders_enriched --limit 0)
echo "$dlq" | tail -3
grep -q "^$rejected dead letter(s)" <<<"$dlq" || fail "dlq list does not show the $rejected rejects"
echo "quickstart: ok (read $read, written $written, rejected $rejected, filtered $filtered; rerun loaded nothing)"
