#!/usr/bin/env bash
# The public-domain text the README's "Training on text" figures use: the King James
# Version of the Bible as Debian's bible-kjv-text package ships it (4.38), printed by its
# `bible` program: one verse per line, one chapter per document (the chapter's heading,
# e.g. "Genesis 1", then its verses; chapters separated by one blank line).
# Usage: scripts/data/kjv.sh [OUT]   (default /tmp/kjv.txt; about 4.3 MB)
set -euo pipefail
out=${1:-/tmp/kjv.txt}
if ! command -v bible >/dev/null; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get install -y -q bible-kjv >&2
fi
[ -e "$out" ] && { echo "$out exists; not overwritten" >&2; exit 1; }
# `bible` prints a blank line before and after each heading: keep only the one before.
bible -l100000 "gen1:1-rev22:21" | awk 'NF == 0 { next } /^[1-3]? ?[A-Z][A-Za-z ]* [0-9]+$/ && NR > 2 { print "" } { print }' > "$out"
echo "$out: $(wc -c < "$out") bytes" >&2
