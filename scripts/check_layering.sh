#!/usr/bin/env bash
# The layering docs/ARCHITECTURE.md states, checked on every #include "..." of the tree:
# each layer may include its own headers and those listed for it below, nothing else.
# tools/, bench/, tests/ and fuzz/ sit on top and may include anything.
# Usage: scripts/check_layering.sh   (exit 1 and one line per violation if any)
set -euo pipefail
cd "$(dirname "$0")/.."

# layer directory -> allowed include prefixes besides its own directory (space separated)
declare -A allowed=(
  # Unix-socket messages with descriptor passing: the bottom, used by hw/ and tee/.
  [ipc]=""
  [hw]="ipc/"
  [driver]="hw/soc_port.h hw/v3d_regs.h hw/sku.h hw/poll_backoff.h"
  [runtime]="driver/ hw/isa/ hw/sku.h hw/v3d_regs.h"
  [nn]="runtime/ driver/ hw/sku.h"
  # The trusted core: the platform interface is its own; only the constant headers besides.
  [replay]="hw/v3d_regs.h hw/sku.h hw/poll_backoff.h"
  [keyring]="replay/signature.h replay/recording.h"
  [record]="replay/ keyring/ driver/hw_io.h hw/v3d_regs.h hw/sku.h"
  # The cloud link (secure channel, frames, shim protocol): itself only; used by tee/, cloud/.
  [link]=""
  # The secure world: the replayer, the keys it is provisioned with, the cloud link, the SoC
  # port (not the model), and the TA's image decoding.
  [tee]="ipc/ replay/ keyring/ link/ hw/poll_backoff.h hw/soc_port.h hw/remote_port.h hw/v3d_regs.h hw/sku.h nn/image.h nn/preprocess.h nn/scores.h nn/tensor.h"
  [cloud]="record/ keyring/ replay/ link/ driver/ runtime/ nn/ hw/soc_port.h hw/v3d_regs.h hw/sku.h"
)
# Inside tee/: the client library must not reach into the secure side.
declare -A forbidden=(
  [tee/teec]="tee/core/ tee/replay_ta"
)

fail=0
for layer in "${!allowed[@]}"; do
  [ -d "$layer" ] || continue
  while IFS=: read -r file line inc; do
    target=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$inc")
    case "$target" in "$layer"/*) continue ;; esac
    ok=0
    for prefix in ${allowed[$layer]}; do
      case "$target" in "$prefix"*) ok=1 ;; esac
    done
    # nn/gpu is part of nn; tee/* sub-directories are part of tee.
    if [ $ok = 0 ]; then
      echo "$file:$line: $layer/ may not include \"$target\""
      fail=1
    fi
  done < <(grep -rnE '^#include "[a-z_]+/' "$layer" --include=*.h --include=*.cpp || true)
done
for dir in "${!forbidden[@]}"; do
  [ -d "$dir" ] || continue
  for prefix in ${forbidden[$dir]}; do
    while IFS=: read -r file line inc; do
      echo "$file:$line: $dir/ may not include \"$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$inc")\""
      fail=1
    done < <(grep -rnE "^#include \"$prefix" "$dir" --include=*.h --include=*.cpp || true)
  done
done
[ $fail = 0 ] && echo "layering: ok (${#allowed[@]} layers checked)"
exit $fail
