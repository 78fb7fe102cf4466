#!/usr/bin/env bash
# The newcomer's path: a whole Darvoza federation on loopback, set up through the real CLI.
#
# Installs what is missing, builds (Release; or reuses --build-dir), then starts a registry,
# two security servers of two agencies, and an example agency backend; registers everything
# with the registry administrator's approvals; makes calls from the Ministry of Employment's
# system to the Tax Committee's service; shows one refused call with its fault; verifies
# both audit logs; and shows each daemon's health, Prometheus metrics and event log. With
# --once it stops everything at the end; otherwise it keeps the federation running until
# Ctrl-C (which stops what it started).
#
# Usage: tools/demo.sh [--build-dir DIR] [--once] [--keep] [--env-file FILE]
#                      [--ss-setting 'KEY = VALUE']...
#   --build-dir DIR  use binaries already built in DIR (no build)
#   --once           stop everything after the summary
#   --keep           keep the working directory (logs, data) afterwards
#   --env-file FILE  write the federation's addresses as shell variables once it is up
#                    (tools/bench.sh drives the running federation with them)
#   --ss-setting     a line added to both security servers' ss.toml, e.g.
#                    'batch_signatures = false' (tools/bench.sh compares with it)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir=""
once=0
keep=0
env_file=""
ss_settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --once) once=1; shift ;;
    --keep) keep=1; shift ;;
    --env-file) env_file=$2; shift 2 ;;
    --ss-setting) ss_settings+=("$2"); shift 2 ;;
    # The comment block at the top of this file, without its '#'.
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$build_dir" ]; then
  build_dir=$("$root/tools/build.sh" --release | tail -n 1)
fi
darvoza="$build_dir/tools/darvoza"
registryd="$build_dir/registry/darvoza-registry"
ssd="$build_dir/security_server/darvoza-ss"
backend="$build_dir/adapters/darvoza-example-backend"
client="$build_dir/adapters/darvoza-example-client"
civil="$build_dir/adapters/darvoza-example-civil-registry"
for bin in "$darvoza" "$registryd" "$ssd" "$backend" "$client" "$civil"; do
  if [ ! -x "$bin" ]; then
    echo "demo.sh: $bin is missing; build first or drop --build-dir" >&2
    exit 1
  fi
done

# Every process must restrict TLS 1.2 to RSA suites before gRPC starts (docs/design.md §4).
export GRPC_SSL_CIPHER_SUITES="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
export GRPC_VERBOSITY=ERROR

work=$(mktemp -d /tmp/darvoza-demo.XXXXXX)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then
    # Where it stopped and what the daemons said last: a failure on a CI machine is read from
    # this output alone.
    echo "demo.sh: stopped with status $status in step: ${current_step:-before step 1}" >&2
    for log in "$work"/*.log; do
      [ -f "$log" ] || continue
      echo "--- last lines of $(basename "$log")" >&2
      tail -n 15 "$log" >&2
    done
  fi
  if [ "$keep" = 1 ] || [ "$status" != 0 ]; then
    echo "Logs and data kept in $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo; echo "Stopping..."; exit 0' INT TERM

current_step=""
step() { current_step=$*; printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$build_dir/tools/||; s|$work/||g"; "$@"; }
wait_for_file() {
  local file=$1 what=$2
  for _ in $(seq 1 200); do [ -s "$file" ] && return 0; sleep 0.1; done
  echo "demo.sh: $what did not start; see $work/*.log" >&2
  exit 1
}
# A daemon's bound address (name from its listen.json, written at start).
listen_address() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
# The value of an unlabelled metric of a daemon ("" when it cannot be read).
metric() {
  curl -sf "http://$(listen_address "$work/$1/listen.json" metrics)/metrics" |
    awk -v m="$2" '$1 == m {printf "%d", $2}'
}
# Approves every pending request the registry lists (as its administrator would, one by one).
approve_pending() {
  local ids
  ids=$("$darvoza" registry request list --data-dir "$work/registry" | awk '/PENDING/ {print $1}')
  for id in $ids; do run "$darvoza" registry request approve "$id" --data-dir "$work/registry"; done
}

INSTANCE=UZ
TAX=UZ/GOV/70000001
BENEFITS=UZ/GOV/70000002
TAX_SUB=$TAX/tax-registry
BEN_SUB=$BENEFITS/benefits
PEN_SUB=$BENEFITS/pensions
SERVICE=$TAX_SUB/darvoza.examples.v1.TaxRegistry
REST_SERVICE=$TAX_SUB/persons

# Fixed before the daemons start (the registry publishes the SSs' addresses); tools/free-ports
# says why they come from below the ephemeral range.
{ read -r registry_port; read -r ss1_port; read -r ss2_port; read -r client1_port
  read -r client2_port; read -r rest2_port; } < <("$root/tools/free-ports" 6)

step "1. The registry: root CA, keys, configuration anchor"
run "$darvoza" registry init --instance "$INSTANCE" --data-dir "$work/registry" \
  --address "127.0.0.1:$registry_port" --public-listen "127.0.0.1:$registry_port"
sed -i 's|^ops_listen = .*|ops_listen = "127.0.0.1:0"|' "$work/registry/registry.toml"
"$registryd" --config "$work/registry/registry.toml" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_for_file "$work/registry/listen.json" "the registry"
echo "registry serving on 127.0.0.1:$registry_port"

step "2. Members and subsystems (registry administrator)"
run "$darvoza" registry member add "$TAX" --name "State Tax Committee" --data-dir "$work/registry"
run "$darvoza" registry member add "$BENEFITS" --name "Ministry of Employment" --data-dir "$work/registry"
for sub in "$TAX_SUB" "$BEN_SUB" "$PEN_SUB"; do
  run "$darvoza" registry subsystem add "$sub" --data-dir "$work/registry"
done

step "3. Two security servers: keys, CSRs, registration, approval"
init_ss() {
  local name=$1 id=$2 ss_port=$3 client_port=$4 rest_port=$5
  run "$darvoza" ss init --data-dir "$work/$name" --anchor "$work/registry/anchor.bin" \
    --server-id "$id" --ss-listen "127.0.0.1:$ss_port" --client-listen "127.0.0.1:$client_port" \
    --client-tls-listen "127.0.0.1:0" --ops-listen "127.0.0.1:0" --rest-listen "127.0.0.1:$rest_port"
  for setting in "${ss_settings[@]}"; do echo "$setting" >>"$work/$name/ss.toml"; done
  # Looks once: the request stays PENDING (exit status 3) until the administrator decides.
  run "$darvoza" ss register --data-dir "$work/$name" || true
}
init_ss ss1 "$TAX/ss1" "$ss1_port" "$client1_port" 0
init_ss ss2 "$BENEFITS/ss2" "$ss2_port" "$client2_port" "$rest2_port"
run "$darvoza" registry request list --data-dir "$work/registry"
approve_pending
for name in ss1 ss2; do
  run "$darvoza" ss register --data-dir "$work/$name" --wait 20
  "$ssd" --config "$work/$name/ss.toml" >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_for_file "$work/$name/listen.json" "security server $name"
done

step "4. Hosting: each agency's subsystems on its security server"
run "$darvoza" ss client add "$TAX_SUB" --data-dir "$work/ss1"
run "$darvoza" ss client add "$BEN_SUB" --data-dir "$work/ss2"
run "$darvoza" ss client add "$PEN_SUB" --data-dir "$work/ss2"
approve_pending
# Both SSs learn the approvals through the registry's watch stream: the calls below wait until
# each holds the configuration the registry published last (nothing later changes it).
published=$(metric registry darvoza_registry_conf_serial)
[ -n "$published" ] || { echo "demo.sh: the registry's metrics give no configuration serial" >&2; exit 1; }
for name in ss1 ss2; do
  for _ in $(seq 1 100); do
    held=$(metric "$name" darvoza_ss_globalconf_serial)
    [ -n "$held" ] && [ "$held" -ge "$published" ] && break
    sleep 0.1
  done
  [ -n "$held" ] && [ "$held" -ge "$published" ] || {
    echo "demo.sh: $name holds configuration serial ${held:-none}, not $published" >&2; exit 1; }
done
echo "both security servers hold the global configuration serial $published"

step "5. The Tax Committee's service and who may call it"
"$backend" --listen 127.0.0.1:0 --name "tax-backend" --address-file "$work/backend.addr" \
  >"$work/backend.log" 2>&1 &
pids+=($!)
wait_for_file "$work/backend.addr" "the example backend"
run "$darvoza" ss service add "$SERVICE" --backend "grpc://$(cat "$work/backend.addr")" --data-dir "$work/ss1"
run "$darvoza" ss acl grant "$SERVICE" "subsystem:$BEN_SUB" --data-dir "$work/ss1"
# A REST service too: a person look-up on plain HTTP (X-Road's REST protocol on the client side).
"$civil" --listen 127.0.0.1:0 --address-file "$work/civil.addr" >"$work/civil.log" 2>&1 &
pids+=($!)
wait_for_file "$work/civil.addr" "the example civil registry"
run "$darvoza" ss service add "$REST_SERVICE" --backend "http://$(cat "$work/civil.addr")" --data-dir "$work/ss1"
run "$darvoza" ss acl grant "$REST_SERVICE" "subsystem:$BEN_SUB" --data-dir "$work/ss1"

step "6. Calls from the Ministry of Employment's system through both security servers"
run "$client" --ss "127.0.0.1:$client2_port" --client "$BEN_SUB" --service "$TAX_SUB" --count 3
run "$client" --ss "127.0.0.1:$client2_port" --client "$BEN_SUB" --service "$TAX_SUB" \
  --count 200 --concurrency 8 --quiet

rest_url="http://127.0.0.1:$rest2_port/r1/$REST_SERVICE/persons/30101900123456"
echo "\$ curl -i $rest_url -H 'X-Road-Client: $BEN_SUB'"
rest_output=$(curl -sS -i "$rest_url" -H "X-Road-Client: $BEN_SUB")
echo "$rest_output"
echo "$rest_output" | grep -q "Aziz Karimov" || { echo "demo.sh: the REST answer is wrong" >&2; exit 1; }
echo "$rest_output" | grep -qi "^x-road-request-hash: " || {
  echo "demo.sh: the REST answer has no X-Road-Request-Hash" >&2; exit 1; }

step "7. A refused call: the pensions system has no access right"
refused_output=$("$client" --ss "127.0.0.1:$client2_port" --client "$PEN_SUB" \
  --service "$TAX_SUB" 2>&1 || true)
echo "$refused_output"
echo "$refused_output" | grep -q "Server.ServerProxy.AccessDenied" || {
  echo "demo.sh: expected Server.ServerProxy.AccessDenied" >&2; exit 1; }

step "8. Auditors: verify both audit logs (hash chain, seals, witness receipts, certificates)"
verified=()
for name in ss1 ss2; do
  ok=0
  for _ in $(seq 1 50); do
    # Seals are made every second and witnessed by the registry: wait until the newest
    # records are sealed too (a live log may end in a few unsealed records).
    if out=$("$darvoza" audit verify "$work/$name/audit" --anchor "$work/registry/anchor.bin" 2>&1); then
      ok=1
      case "$out" in *"not yet sealed"*) ;; *) break ;; esac
    fi
    sleep 0.2
  done
  echo "$ darvoza audit verify $name/audit --anchor registry/anchor.bin"
  echo "$out"
  [ "$ok" = 1 ] || { echo "demo.sh: audit log of $name does not verify" >&2; exit 1; }
  verified+=("$name: $(echo "$out" | head -n 1)")
done

step "9. Operators: health, Prometheus metrics and the event log of each daemon"
run "$darvoza" ss status --data-dir "$work/ss2"
metrics=()
for name in registry ss1 ss2; do
  address=$(listen_address "$work/$name/listen.json" metrics)
  if ! scrape=$(curl -sSf "http://$address/metrics"); then
    echo "demo.sh: $name serves no metrics on $address" >&2; exit 1
  fi
  echo "$scrape" | grep -q '^# HELP darvoza_' || { echo "demo.sh: $name's metrics have no HELP" >&2; exit 1; }
  metrics+=("$name http://$address/metrics")
done
ss2_metrics=$(listen_address "$work/ss2/listen.json" metrics)
echo "\$ curl -s http://$ss2_metrics/metrics | grep '^darvoza_ss_exchanges_total'"
exchanges=$(curl -sS "http://$ss2_metrics/metrics" | grep '^darvoza_ss_exchanges_total' || true)
echo "$exchanges"
echo "$exchanges" | grep -q 'fault="Server.ServerProxy.AccessDenied"' || {
  echo "demo.sh: ss2's metrics do not count the refused call" >&2; exit 1; }
echo "\$ grep call.refused ss2.log"
grep -m 1 'call.refused' "$work/ss2.log" || { echo "demo.sh: ss2 logged no refused call" >&2; exit 1; }

step "Summary"
cat <<EOF
  registry             127.0.0.1:$registry_port   instance $INSTANCE
  security server ss1  127.0.0.1:$ss1_port   $TAX (State Tax Committee), hosts $TAX_SUB
  security server ss2  127.0.0.1:$ss2_port   $BENEFITS (Ministry of Employment), hosts $BEN_SUB, $PEN_SUB
  client port of ss2   127.0.0.1:$client2_port   (plaintext, loopback)
  REST port of ss2     127.0.0.1:$rest2_port   (X-Road PR-REST, plaintext, loopback)
  exchanges            204 gRPC and 2 REST answered (signed, mTLS, logged on both sides), 1 refused: Server.ServerProxy.AccessDenied
  audit logs           ${verified[0]}
                       ${verified[1]}
  metrics              ${metrics[0]}
                       ${metrics[1]}
                       ${metrics[2]}
  event logs           $work/{registry,ss1,ss2}.log (docs/operator.md, "The event log")
EOF

if [ -n "$env_file" ]; then
  cat >"$env_file.tmp" <<EOF
DEMO_WORK=$work
DEMO_CLIENT_PORT=127.0.0.1:$client2_port
DEMO_CLIENT=$BEN_SUB
DEMO_SERVICE=$TAX_SUB
DEMO_BACKEND=$(cat "$work/backend.addr")
DEMO_REST_PORT=127.0.0.1:$rest2_port
DEMO_REST_SERVICE=$REST_SERVICE
DEMO_CIVIL=$(cat "$work/civil.addr")
DEMO_PIDS="${pids[*]}"
EOF
  mv "$env_file.tmp" "$env_file"
fi

if [ "$once" = 1 ]; then
  step "Stopping (--once)"
  exit 0
fi
cat <<EOF

The federation keeps running. Try, in another terminal:
  $client --ss 127.0.0.1:$client2_port --client $BEN_SUB --service $TAX_SUB
  curl -i http://127.0.0.1:$rest2_port/r1/$REST_SERVICE/persons/30101900123456 -H 'X-Road-Client: $BEN_SUB'
  $darvoza ss status --data-dir $work/ss2
  curl -s http://$ss2_metrics/metrics
  tail -f $work/ss2.log
  $darvoza audit find --client $BEN_SUB --db $work/ss2/audit
Press Ctrl-C to stop everything.
EOF
while true; do sleep 1; done
