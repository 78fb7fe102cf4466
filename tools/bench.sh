#!/usr/bin/env bash
# End-to-end benchmark of the exchange (docs/design.md §8), every number measured in this run on
# this machine:
#   direct    the client IS calls the backend itself (plaintext gRPC)
#   darvoza   the same call through two security servers: mTLS, signatures, durable audit logs
#             on both sides, access control (the demo's federation, Release build)
#   nginx     the same call through a two-hop mTLS gRPC proxy chain of nginx (no signing, no
#             logging): the floor for "two TLS hops"
#   rest-direct / rest-darvoza   a REST look-up (GET, HTTP/1.1 keep-alive) on the example civil
#             registry, called directly and through both security servers' REST path
# at concurrency 1 and 64, with calls/s, p50/p99 latency, server CPU per exchange and the
# security servers' peak RSS, and the disk's fsync time (a durable audit write waits for one).
# The load generator runs on CPU 1, the servers on CPU 0 (2-core machines: see NOTES).
#
# Usage: tools/bench.sh [--build-dir DIR] [--seconds N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir=""
seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

"$root/tools/install-deps.sh" nginx-light >&2
if [ -z "$build_dir" ]; then
  build_dir=$("$root/tools/build.sh" --release | tail -n 1)
fi
load="$build_dir/bench/darvoza-bench-load"
rest_load="$build_dir/bench/darvoza-bench-rest"
backend_bin="$build_dir/adapters/darvoza-example-backend"
export GRPC_SSL_CIPHER_SUITES="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
export GRPC_VERBOSITY=ERROR

work=$(mktemp -d /tmp/darvoza-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cpu_ticks() {  # utime+stime of the given pids, in clock ticks
  local total=0
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

echo "Starting the demo federation on CPU 0..."
taskset -c 0 "$root/tools/demo.sh" --build-dir "$build_dir" --env-file "$work/fed.env" \
  >"$work/demo.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/fed.env" ] && break; sleep 0.1; done
[ -s "$work/fed.env" ] || { cat "$work/demo.log"; echo "bench.sh: the federation did not start" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/fed.env"
ss_pids=$(pgrep -f "darvoza-ss --config $DEMO_WORK" | tr '\n' ' ')
backend_pid=$(pgrep -f "darvoza-example-backend.*$DEMO_WORK" | head -n 1)
civil_pid=$(pgrep -f "darvoza-example-civil-registry.*$DEMO_WORK" | head -n 1)

echo "Starting the nginx mTLS chain on CPU 0..."
nginx_dir="$work/nginx"
mkdir -p "$nginx_dir"
(
  cd "$nginx_dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout ca.key -out ca.pem 2>/dev/null
  for name in a b; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench.invalid" \
      -keyout "$name.key" -out "$name.csr" 2>/dev/null
    printf 'subjectAltName=DNS:bench.invalid\n' >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  done
)
{ read -r hop_a; read -r hop_b; } < <("$root/tools/free-ports" 2)
cat >"$nginx_dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  # Long-lived upstream connections, as between security servers.
  upstream hop_b { server 127.0.0.1:$hop_b; keepalive 64; }
  upstream backend { server $DEMO_BACKEND; keepalive 64; }
  # Hop A: the client's side (like a consumer SS): plaintext in, mTLS out.
  server {
    listen 127.0.0.1:$hop_a http2;
    location / {
      grpc_pass grpcs://hop_b;
      grpc_ssl_certificate $nginx_dir/a.pem;
      grpc_ssl_certificate_key $nginx_dir/a.key;
      grpc_ssl_trusted_certificate $nginx_dir/ca.pem;
      grpc_ssl_verify on;
      grpc_ssl_name bench.invalid;
      grpc_ssl_protocols TLSv1.3;
      grpc_ssl_session_reuse on;
    }
  }
  # Hop B: the provider's side: mTLS in, plaintext to the backend.
  server {
    listen 127.0.0.1:$hop_b ssl http2;
    ssl_certificate $nginx_dir/b.pem;
    ssl_certificate_key $nginx_dir/b.key;
    ssl_client_certificate $nginx_dir/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    location / { grpc_pass grpc://backend; }
  }
}
EOF
taskset -c 0 nginx -c "$nginx_dir/nginx.conf" -p "$nginx_dir" >"$nginx_dir/stdout.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$nginx_dir/nginx.pid" ] && break; sleep 0.1; done
nginx_pids=$(pgrep -f "nginx.*$nginx_dir" | tr '\n' ' ')

echo "Measuring the disk's fsync time..."
fsync_us=$(python3 - "$work" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync.probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
samples = []
for i in range(200):
    os.write(fd, b"x" * 1024)
    t = time.perf_counter(); os.fsync(fd); samples.append(time.perf_counter() - t)
samples.sort()
print(int(samples[len(samples) // 2] * 1e6))
PY
)

results="$work/results.jsonl"
measure() {  # name target concurrency [client service]
  local name=$1 target=$2 conc=$3 server_pids=$4; shift 4
  local before after
  before=$(cpu_ticks $server_pids)
  local out
  if [[ $name == rest-* ]]; then
    out=$(taskset -c 1 "$rest_load" --url "$target" --concurrency "$conc" --seconds "$seconds" \
      --warmup 1 "$@")
  else
    out=$(taskset -c 1 "$load" --target "$target" --concurrency "$conc" --seconds "$seconds" \
      --warmup 1 "$@")
  fi
  after=$(cpu_ticks $server_pids)
  echo "{\"name\": \"$name\", \"concurrency\": $conc, \"server_cpu_ticks\": $((after - before)), \"load\": $out}" >>"$results"
  echo "  $name c=$conc: $out"
}
echo "Running the loads ($seconds s each)..."
for c in 1 64; do
  measure direct "$DEMO_BACKEND" "$c" "$backend_pid"
  measure darvoza "$DEMO_CLIENT_PORT" "$c" "$ss_pids $backend_pid" \
    --client "$DEMO_CLIENT" --service "$DEMO_SERVICE"
  measure nginx "127.0.0.1:$hop_a" "$c" "$nginx_pids $backend_pid"
  person=persons/30101900123456
  measure rest-direct "http://$DEMO_CIVIL/$person" "$c" "$civil_pid"
  measure rest-darvoza "http://$DEMO_REST_PORT/r1/$DEMO_REST_SERVICE/$person" "$c" \
    "$ss_pids $civil_pid" --header "X-Road-Client: $DEMO_CLIENT"
done
rss_kb=0
for pid in $ss_pids; do
  kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  [ "$kb" -gt "$rss_kb" ] && rss_kb=$kb
done

python3 - "$results" "$(getconf CLK_TCK)" "$fsync_us" "$rss_kb" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tck = float(sys.argv[2]); fsync_us = int(sys.argv[3]); rss_mb = int(sys.argv[4]) / 1024
by = {(r["name"], r["concurrency"]): r for r in rows}
print()
print(f"disk fsync p50: {fsync_us} us   peak RSS of one security server: {rss_mb:.1f} MiB")
print(f"{'path':12} {'conc':>4} {'calls/s':>9} {'p50 us':>8} {'p99 us':>8} {'server CPU us/call':>19}"
      f" {'vs direct':>10} {'vs nginx':>9}")
def rate(name, c):
    r = by.get((name, c))
    return r["load"]["calls_per_second"] if r and r["load"]["calls_per_second"] else float("nan")
for c in (1, 64):
    for name in ("direct", "darvoza", "nginx", "rest-direct", "rest-darvoza"):
        r = by.get((name, c))
        if not r: continue
        l = r["load"]
        calls = max(l["calls"], 1)
        cpu_us = r["server_cpu_ticks"] / tck * 1e6 / calls
        rest = name.startswith("rest-")
        vs_direct = l["calls_per_second"] / rate("rest-direct" if rest else "direct", c)
        vs_nginx = "" if rest else f"{l['calls_per_second'] / rate('nginx', c):.2f}"
        print(f"{name:12} {c:>4} {l['calls_per_second']:>9.0f} {l['p50_us']:>8} {l['p99_us']:>8}"
              f" {cpu_us:>19.0f} {vs_direct:>10.2f} {vs_nginx:>9}")
PY
