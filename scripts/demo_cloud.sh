#!/usr/bin/env bash
# make demo-cloud: the cloud and a device on one machine. rplayer-cloud (no GPU) records
# SqueezeNet through a relay that adds 20 ms of round-trip time, driving the device's GPU
# through its TEE; the device then classifies cat.jpg in its TEE with that recording and
# its own copy of the weights (the cloud never had them).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build}
RTT=${RTT:-20}
IMAGE=${DEMO_IMAGE:-../shared/images/cat.jpg}
run=$(mktemp -d)
cloud= relay=
cleanup() {
  [ -n "$relay" ] && kill "$relay" 2>/dev/null
  [ -n "$cloud" ] && kill "$cloud" 2>/dev/null
  "$B/rplayer" worlds stop --tee-dir "$run/worlds" >/dev/null 2>&1 || true
  rm -rf "$run"
}
trap cleanup EXIT
# The port a server printed in "listening on HOST:PORT" (bounded wait: 10 s).
port_of() {
  for _ in $(seq 100); do
    p=$(grep -o 'listening on [0-9.]*:[0-9]*' "$1" 2>/dev/null | head -1 | sed 's/.*://')
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.1
  done
  echo "no port in $1:" >&2; cat "$1" >&2; exit 1
}
"$B/rplayer" cloud serve --listen 127.0.0.1:0 2>"$run/cloud.log" & cloud=$!
cloud_port=$(port_of "$run/cloud.log")
"$B/rplayer" netem --listen 127.0.0.1:0 --connect "127.0.0.1:$cloud_port" --rtt "$RTT" \
  2>"$run/relay.log" & relay=$!
relay_port=$(port_of "$run/relay.log")
echo "cloud at 127.0.0.1:$cloud_port, relay (rtt $RTT ms) at 127.0.0.1:$relay_port"
"$B/rplayer" worlds start --tee-dir "$run/worlds" >"$run/worlds.log" 2>&1
"$B/rplayer" record --cloud "127.0.0.1:$relay_port" --model squeezenet \
  --worlds-dir "$run/worlds" -o "$B/squeezenet-cloud.rec"
"$B/rplayer" classify --tee --recording "$B/squeezenet-cloud.rec" --tee-dir "$run/worlds" "$IMAGE"
