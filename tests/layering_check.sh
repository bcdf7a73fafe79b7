#!/usr/bin/env bash
# Checks the folders' include rules (each folder's README.md states them): a file may
# include, with quotes, only headers of the folders its layer allows. Run by ctest
# (label `layout`); exits 1 naming every violation.
#
#   tests/layering_check.sh [--self-test] [ROOT]
#
# --self-test first checks that a planted violation (the CLI including the agent) fails.
set -euo pipefail
if [[ ${1:-} == --self-test ]]; then
  shift
  planted=$(mktemp -d)
  trap 'rm -rf "$planted"' EXIT
  mkdir -p "$planted/cli"
  echo '#include "agent/ops/options.hpp"' >"$planted/cli/bad.cpp"
  if "${BASH_SOURCE[0]}" "$planted" >/dev/null; then
    echo "layering: the self-test's planted violation was not caught" >&2
    exit 1
  fi
fi
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$root"

# folder → the include prefixes it may use (besides its own folder).
declare -A allowed=(
  [include/yuxi/config]="yuxi/config/"
  [core]="yuxi/config/ core/"
  [lock]="yuxi/config/ core/ lock/"
  [service]="yuxi/config/ core/ service/"
  [agent/ops]="yuxi/config/ core/ service/ agent/ops/"
  [agent/segment]="yuxi/config/ core/ agent/ops/ agent/segment/"
  [agent/file]="yuxi/config/ core/ agent/ops/ agent/segment/ agent/file/"
  [agent/fleet]="yuxi/config/ core/ lock/ agent/ops/ agent/segment/ agent/fleet/"
  [agent/postgres]="yuxi/config/ core/ lock/ agent/ops/ agent/segment/ agent/fleet/ agent/postgres/"
  [agent]="yuxi/config/ core/ lock/ agent/"
  [admin]="yuxi/config/ core/ lock/ admin/"
  [cli]="yuxi/config/ core/ lock/ admin/ cli/"
  [python/src]="yuxi/config/ core/ lock/ admin/"
  [injector]="yuxi/config/ core/ service/ injector/"
)

violations=0
check() {
  local file=$1 folder=$2 inc ok prefix
  while IFS= read -r inc; do
    ok=0
    for prefix in ${allowed[$folder]}; do
      [[ $inc == "$prefix"* ]] && ok=1
    done
    # A sibling by its bare name (same directory) is its own folder.
    [[ $inc != */* && -f $(dirname "$file")/$inc ]] && ok=1
    if ((ok == 0)); then
      echo "layering: $file includes \"$inc\", which $folder/ may not (see $folder/README.md)"
      violations=$((violations + 1))
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$file")
}

for folder in "${!allowed[@]}"; do
  [[ -d $folder ]] || continue
  while IFS= read -r f; do
    check "$f" "$folder"
  done < <(find "$folder" -maxdepth 1 -type f \( -name '*.cpp' -o -name '*.hpp' \) | sort)
done
if ((violations > 0)); then
  echo "layering: $violations violation(s)"
  exit 1
fi
echo "layering: every folder includes only what its layer allows"
