#!/usr/bin/env bash
# Runs clawback's main job on the embedded default: installs what it needs, builds, starts the
# Retarus feed simulator with the sample feed and the Microsoft Graph simulator with the demo
# mailboxes, and runs the daemon against both with the demo rules (scripts/demo.py). Prints per
# event the decision, the outcome and where the mail went. KEEP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build clawback >/dev/null

/usr/bin/python3 scripts/demo.py
