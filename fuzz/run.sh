#!/usr/bin/env bash
# Runs every fuzz target for RUNS executions (default 1,000,000) with libFuzzer's hang (1 s)
# and memory (2 GiB) limits, seeded from the project's own example files, and prints one line
# per target: runs, seconds, executions per second, coverage, and whether it found anything.
# Needs the nightly toolchain and `cargo install cargo-fuzz`. Usage: fuzz/run.sh [RUNS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")"
RUNS="${1:-1000000}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi

seed() { # target, files…
  local dir="corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/" || true; done
}
seed playbook ../examples/playbooks/*.yml ../examples/demo/playbooks/*.yml
seed medic_config ../examples/medic.yml ../examples/demo/medic.yml
seed alertmanager_config ../examples/alertmanager.yml ../examples/demo/alertmanager.yml
seed rule_file ../examples/rules/*.yml ../examples/demo/rules.yml
mkdir -p corpus/promql corpus/template corpus/matchers corpus/alerts_json corpus/exposition
printf 'sum by (job) (rate(http_requests_total[5m]))' > corpus/promql/a
printf 'histogram_quantile(0.9, sum by (le) (rate(x_bucket[1m]))) > bool 2 or label_replace(up, "a", "$1", "job", "(.*)")' > corpus/promql/b
printf 'max_over_time(deriv(rate(http_requests_total[1m])[10m:30s])[5m:]) offset 1m @ 100' > corpus/promql/c
printf '{{ $labels.instance }} is down: {{ $value | humanize }} {{ range query "up" }}{{ .Labels.job }}{{ end }}' > corpus/template/a
printf '{alertname="Down",severity=~"crit|page",team!="x"}' > corpus/matchers/a
printf '[{"labels":{"alertname":"Down","instance":"a"},"annotations":{"s":"x"},"startsAt":"2024-01-01T00:00:00Z","endsAt":"2024-01-01T01:00:00Z","generatorURL":"http://x"}]' > corpus/alerts_json/a
printf '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 1 1700000000000\nb{le="0.5"} 2.5e-3\n# EOF\n' > corpus/exposition/a

cargo +nightly fuzz build -O --debug-assertions >/dev/null
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t.log"
  start=$(date +%s.%N)
  set +e
  cargo +nightly fuzz run -O --debug-assertions "$t" "corpus/$t" -- \
    -runs="$RUNS" -timeout=1 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  done_runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo ?)
  found=$(ls "artifacts/$t" | wc -l)
  printf '%-20s runs %9s  %6.0f s  %7.0f exec/s  cov %6s  exit %d  findings %d\n' \
    "$t" "$done_runs" "$secs" "$(echo "${done_runs:-0} / $secs" | bc -l)" "$cov" "$rc" "$found"
done
