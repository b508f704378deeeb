#!/usr/bin/env bash
# Mutation testing of the measurement core with cargo-mutants: small
# deliberate bugs planted one at a time in the statistics, the records, the
# timing loop, the FMA peak, compare, the reports and exports, the results
# files (ci/mutants.toml, built without the frameworks) and in what each
# backend is asked to do for a mode and a level (ci/mutants-backends.toml).
#
#   ci/mutants.sh              every mutant of the core and the backends
#   ci/mutants.sh --diff REV   only mutants on lines changed since REV (CI)
#
# Fails when a mutant survives (no test caught it) unless it is listed in
# ci/mutants-equivalent.txt with the reason it changes no behaviour. Runs
# --in-place: each mutant is written into this tree and reverted after (so
# run it on a clean checkout); the build cache is outside the repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo-mutants >/dev/null 2>&1 || cargo install --locked cargo-mutants@27.1.0

base=""
case "${1:-}" in
  --diff) base="${2:?--diff needs a git revision}" ;;
  "") ;;
  *) echo "ci/mutants.sh: unknown argument '$1' (expected --diff REV)" >&2; exit 2 ;;
esac
cache="${SPEEDBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/speedbench}"
# its own build folder (the quick `mutants` profile), kept between runs
export CARGO_TARGET_DIR="${MUTANTS_TARGET_DIR:-$cache/target-mutants}"
out="${MUTANTS_OUT:-$(mktemp -d)}"
mkdir -p "$out"

# the equivalent mutants: one regex per line, then '#' and the reason
excludes=()
while IFS= read -r line; do
  re="${line%%#*}"
  re="$(echo "$re" | sed 's/[[:space:]]*$//')"
  [ -n "$re" ] && excludes+=(--exclude-re "$re")
done < ci/mutants-equivalent.txt

common=(--in-place --timeout 120 --build-timeout 900 "${excludes[@]}")
if [ -n "$base" ]; then
  git diff "$base" -- src runtimes > "$out/changes.diff"
  if [ ! -s "$out/changes.diff" ]; then
    echo "mutants: no source change since $base"
    exit 0
  fi
  # with the baseline run kept: the tests ran unmutated in CI, but with
  # the frameworks built in; a test that fails without them would mark
  # every mutant caught, so cargo-mutants checks the unmutated tree first
  common+=(--in-diff "$out/changes.diff")
fi

# outcomes of one kind in a pass's report (0 when it tested nothing)
count() {
  local f="$1/mutants.out/$2.txt"
  if [ -f "$f" ]; then wc -l < "$f"; else echo 0; fi
}

status=0
for pass in core backends; do
  config=ci/mutants.toml
  packages=()
  # the backends' files are in the runtimes' crates: every package is
  # looked at, each mutant tested by its own package's tests
  [ "$pass" = backends ] && config=ci/mutants-backends.toml && packages=(--workspace)
  start=$SECONDS
  set +e
  cargo mutants --config "$config" "${packages[@]}" "${common[@]}" --output "$out/$pass" > "$out/$pass.log" 2>&1
  code=$?
  set -e
  tail -n 4 "$out/$pass.log"
  missed="$out/$pass/mutants.out/missed.txt"
  timeout="$out/$pass/mutants.out/timeout.txt"
  echo "mutants ($pass): exit $code in $((SECONDS - start)) s; caught $(count "$out/$pass" caught), missed $(count "$out/$pass" missed), timed out $(count "$out/$pass" timeout), unviable $(count "$out/$pass" unviable)"
  case "$code" in
    0) ;;
    2) echo "mutants ($pass): surviving mutants (add a test, or list them in ci/mutants-equivalent.txt with the reason):"
       cat "$missed"; status=1 ;;
    3) echo "mutants ($pass): timed out (a mutant that hangs the tests is caught):"; cat "$timeout" ;;
    *) echo "mutants ($pass): cargo-mutants failed (exit $code); see $out/$pass.log"; tail -n 30 "$out/$pass.log"; status=1 ;;
  esac
done
exit "$status"
