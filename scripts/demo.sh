#!/usr/bin/env bash
# Runs clawback's main job on the embedded default: installs what it needs, builds, and feeds
# the sample Retarus feed (tests/data/feed-sample.jsonl) through the pipeline with the demo
# rules (etc/demo/rules.conf), printing per event what was decided and done.
# Everything it writes goes to a temporary folder, removed afterwards unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build clawback >/dev/null

work=$(mktemp -d /tmp/clawback-demo-XXXXXX)
if [[ "${KEEP:-0}" != 1 ]]; then
	trap 'rm -rf "$work"' EXIT
else
	echo "demo files kept in $work"
fi

cat >"$work/clawback.conf" <<CONF
[general]
store = $work/clawback.db
rules = $top/etc/demo/rules.conf
backend = log
log_level = warning
CONF

echo "== replaying $(wc -l <tests/data/feed-sample.jsonl) sample events"
build/clawback --config "$work/clawback.conf" replay tests/data/feed-sample.jsonl
