#!/usr/bin/env bash
# Runs every test: installs what the build and tests need, builds clawback, runs the unit and
# end-to-end tests, then builds again with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs the unit tests under them. Build trees: build/ and build-sanitize/.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (release with debug info)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build

echo "== unit and end-to-end tests"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCLAWBACK_SANITIZE=ON >/dev/null
ninja -C build-sanitize
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-sanitize --output-on-failure -L unit -j "$jobs"
