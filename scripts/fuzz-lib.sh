# Shared by scripts/run-fuzz and scripts/fuzz-campaign: building the fuzz preset and
# where each target's corpus is. Sourced, not run.

# The targets, by the name of their binary without _fuzz (tests/fuzz/CMakeLists.txt).
fuzz_targets=(segment batch snapshot stream agent_report history notify catchup http toml json_file
  database_url options envelope value_schemas admission)

# fuzz_build ROOT DIR: configures and builds the fuzz preset into DIR.
fuzz_build() {
  local root=$1 dir=$2 generator=()
  if [[ ! -f $dir/CMakeCache.txt ]] && command -v ninja >/dev/null; then
    generator=(-G Ninja)
  fi
  cmake --preset fuzz -S "$root" -B "$dir" "${generator[@]}" >/dev/null
  cmake --build "$dir" -j "$(nproc)" --target fuzz_targets
}

# fuzz_corpus ROOT DIR TARGET: prints the directory of TARGET's committed seeds. The
# segment's seeds are segments the real writer makes, written fresh (and normalized, so
# that they are the same bytes on every run).
fuzz_corpus() {
  local root=$1 dir=$2 target=$3
  if [[ $target == segment ]]; then
    rm -rf "$dir/fuzz-seeds"
    # A seed maker that fails must fail the run: a command substitution would hide it.
    "$dir/bin/segment_fuzz_corpus" "$dir/fuzz-seeds" >/dev/null || return 1
    echo "$dir/fuzz-seeds"
  else
    echo "$root/tests/fuzz/corpus/$target"
  fi
}
