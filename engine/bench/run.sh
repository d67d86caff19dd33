#!/usr/bin/env bash
# Side-by-side benchmark: Weft's engine vs aws-local-stepfunctions (npm) on the conformance
# corpus, a 1,000-state Pass chain and a Map over 10,000 items. Weft runs on one core (a
# current-thread runtime); Node is single-threaded too.
#   engine/bench/run.sh            (needs node >= 20 and npm)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/../tests/conformance"
mkdir -p "$here/results"
if [ ! -d "$here/node_modules/aws-local-stepfunctions" ]; then
  (cd "$here" && npm install --no-audit --no-fund >/dev/null)
fi
(cd "$here/../.." && cargo bench -p engine --bench throughput -- "$corpus" "$here/results/weft.json")
(cd "$here" && node als.mjs "$corpus" "$here/results/als.json")
node "$here/compare.mjs" "$here/results/weft.json" "$here/results/als.json"
