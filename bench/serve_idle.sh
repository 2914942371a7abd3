#!/usr/bin/env bash
# The daemon's scheduling overhead: N pipelines (200 by default) scheduled
# every second, each with nothing new to read, in one `backbone serve`.
# Prints the CPU and memory of the process over a window, and the runs it
# made per second (each a real run: plan, history, versions, checkpoints).
#
#   bash bench/serve_idle.sh            # 200 pipelines, 30 s window
#   PIPELINES=50 WINDOW=60 bash bench/serve_idle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n=${PIPELINES:-200}
window=${WINDOW:-30}
out=bench/out/serve-idle
rm -rf "$out"
mkdir -p "$out/pipelines" "$out/data"
go build -o bench/out/backbone ./cmd/backbone
for i in $(seq 1 "$n"); do
  mkdir -p "$out/data/p$i"
  cat >"$out/pipelines/p$i.yaml" <<YAML
name: p$i
schedule: every 1s
catch_up: skip
source:
  type: csv
  path: $PWD/$out/data/p$i/*.csv
  schema: {id: int, v: int}
sink: {type: sqlite, path: $PWD/$out/data/p$i/out.db, table: t, mode: upsert, key: [id], create: true}
YAML
done
token=bench-$RANDOM$RANDOM
BACKBONE_ADMIN_TOKEN=$token bench/out/backbone serve --pipelines "$out/pipelines" --state "$out/state.db" \
  --listen 127.0.0.1:0 >"$out/serve.out" 2>"$out/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q listening "$out/serve.out" && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on http:\/\/\([^,]*\),.*/\1/p' "$out/serve.out")
runs() { curl -s -H "Authorization: Bearer $token" "http://$addr/metrics" | awk '/^backbone_runs_total/ {s += $2} END {print s + 0}'; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
sleep 10 # warm up: every pipeline has run
hz=$(getconf CLK_TCK)
r0=$(runs); c0=$(ticks); t0=$(date +%s.%N)
max_rss=0
for _ in $(seq 1 "$window"); do
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss
done
r1=$(runs); c1=$(ticks); t1=$(date +%s.%N)
awk -v n="$n" -v r0="$r0" -v r1="$r1" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v rss="$max_rss" 'BEGIN {
  secs = t1 - t0
  printf "pipelines                 %d, each every 1s\n", n
  printf "runs per second           %.1f (schedule asks %d)\n", (r1 - r0) / secs, n
  printf "CPU of the daemon         %.1f%% of one core\n", (c1 - c0) / hz / secs * 100
  printf "CPU per run               %.2f ms\n", (c1 - c0) / hz * 1000 / (r1 - r0 > 0 ? r1 - r0 : 1)
  printf "peak RSS                  %.1f MiB\n", rss / 1024
}'
