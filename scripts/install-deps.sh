#!/usr/bin/env bash
# Install the Debian 12 packages that building clawback and running its tests need.
# Idempotent: prints nothing and changes nothing when every package is already there.
# Runs apt-get through sudo when not root.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries
  libjansson-dev libsqlite3-dev libpcre2-dev libinih-dev libcurl4-openssl-dev
  libwslay-dev libssl-dev libsystemd-dev libxml2-dev libmicrohttpd-dev
  # unit tests
  libcmocka-dev
  # simulators and end-to-end tests (Debian's /usr/bin/python3 and node)
  python3 python3-pytest python3-websockets python3-aiohttp python3-msal python3-jwt
  python3-cryptography python3-exchangelib python3-aiosmtpd nodejs
  sqlite3 openssl curl procps
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
