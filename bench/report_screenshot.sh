#!/usr/bin/env bash
# Screenshot a report page in headless Chromium (to look at the page as a reader sees it).
#
#   bench/report_screenshot.sh REPORT_DIR [OUT.png] [WIDTHxHEIGHT]
#
# Needs Debian's chromium (apt-get install -y chromium); exits 3 with a reason without it.
set -euo pipefail
dir=${1:?usage: $0 REPORT_DIR [OUT.png] [WIDTHxHEIGHT]}
out=${2:-$dir/../report_screenshot.png}
size=${3:-1400x3000}
page="$(cd "$dir" && pwd)/index.html"
[ -f "$page" ] || { echo "$page: no report page" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "no chromium found (apt-get install -y chromium)" >&2; exit 3; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
    --hide-scrollbars --screenshot="$(realpath -m "$out")" --window-size="${size/x/,}" \
    "file://$page" >/dev/null 2>&1
[ -s "$out" ] || { echo "chromium wrote no screenshot" >&2; exit 1; }
echo "$out"
