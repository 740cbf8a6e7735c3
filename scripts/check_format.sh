#!/usr/bin/env bash
# Lines changed since BASE (default: the commit before HEAD, i.e. what the last commit or
# merge brought) must be clang-formatted (.clang-format). Untouched code is left alone.
# Usage: scripts/check_format.sh [BASE]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-HEAD~1}
if ! git rev-parse --verify -q "$base^{commit}" >/dev/null; then
  echo "format: $base does not exist here (a shallow clone?): nothing to compare, skipped"
  exit 0
fi
cf=$(command -v git-clang-format-14 || command -v git-clang-format || true)
if [ -z "$cf" ]; then
  echo "check_format: git-clang-format not found (apt install clang-format)" >&2
  exit 1
fi
out=$("$cf" --binary "$(command -v clang-format-14 || command -v clang-format)" --diff "$base" \
        --extensions h,cpp 2>&1 || true)
case "$out" in
  *"no modified files to format"*|*"clang-format did not modify any files"*|"")
    echo "format: ok (lines changed since $base)"; exit 0 ;;
esac
echo "$out"
echo "check_format: the lines above changed since $base and are not clang-formatted" >&2
echo "(fix: git clang-format-14 $base)" >&2
exit 1
