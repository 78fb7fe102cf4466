#!/usr/bin/env bash
# End-to-end benchmark of the exchange (docs/performance.md), every number measured in this run
# on this machine:
#   direct       the client IS calls the backend itself (plaintext gRPC)
#   darvoza      the same call through two security servers: mTLS, signatures, durable audit
#                logs on both sides, access control (the demo's federation, Release build)
#   nginx        the same call through a two-hop mTLS gRPC proxy chain of nginx (no signing, no
#                logging): the floor for "two TLS hops"
#   rest-direct / rest-darvoza   a REST POST echoed by the example civil registry, called
#                directly and through both security servers' REST path (HTTP/1.1 keep-alive)
# with bodies of 1 KiB and 64 KiB each way, at concurrency 1, 16, 128 and 256. For each load it
# reports calls/s, p50/p99 latency and CPU per call of the two security servers together (or of
# nginx, master and workers), apart from the backend's; CPU and calls come from the same
# measured window (the load generators sample /proc themselves). It also reports each security
# server's RSS idle before and after the loads and at its peak, the disk's fsync p50/p99 (a
# durable audit write waits for one), and a steady-state audit run: appends to a large log
# (built once by darvoza-audit-bulk and reused) against a fresh one, judged by compaction bytes
# and CPU per record. Servers run on CPU 0, load generators on CPU 1 (2-core machines). After the
# loads both security servers' audit logs are verified strictly and must hold every append.
# For each gRPC load through Darvoza it also prints the security servers' signature batching
# (docs/design.md §8), from their darvoza_ss_signature_batch_size metric: the mean number of
# envelopes per signing and the ECDSA signings per call of both SSs together.
# Prints a table and writes JSON.
#
# Usage: tools/bench.sh [--build-dir DIR] [--seconds N] [--quick] [--json FILE]
#                       [--audit-log DIR] [--audit-records N] [--audit-steady M]
#                       [--compare-batching] [--concurrency "C1 C2 ..."]
#   --quick          1 KiB only, concurrency 1 and 128, 2 s per load, a 200,000-record log
#   --compare-batching  a second federation with batch_signatures = false, measured beside
#                    the first in the same run (rows darvoza-nobatch)
#   --concurrency    the concurrencies to load with (default "1 16 128 256")
#   --json FILE      where to write the results (default: bench.json in the current directory)
#   --audit-log DIR  the large log, reused between runs (default: build/bench-audit-log)
#   --audit-records  records in the large log (default 10,000,000; 0 skips the audit run)
#   --audit-steady   records appended to each log in the steady-state run (default 200,000)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir=""
seconds=5
warmup=1
bodies="1024 65536"
concurrencies="1 16 128 256"
json_out="$PWD/bench.json"
audit_log="$root/build/bench-audit-log"
audit_records=10000000
audit_steady=200000
compare_batching=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --quick) seconds=2; warmup=0.5; bodies="1024"; concurrencies="1 128"
             audit_records=200000; audit_steady=20000; shift ;;
    --json) json_out=$2; shift 2 ;;
    --audit-log) audit_log=$2; shift 2 ;;
    --audit-records) audit_records=$2; shift 2 ;;
    --audit-steady) audit_steady=$2; shift 2 ;;
    --compare-batching) compare_batching=1; shift ;;
    --concurrency) concurrencies_set=$2; shift 2 ;;
    -h|--help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

concurrencies=${concurrencies_set:-$concurrencies}
"$root/tools/install-deps.sh" nginx-light >&2
if [ -z "$build_dir" ]; then
  build_dir=$("$root/tools/build.sh" --release | tail -n 1)
fi
load="$build_dir/bench/darvoza-bench-load"
rest_load="$build_dir/bench/darvoza-bench-rest"
bulk="$build_dir/bench/darvoza-audit-bulk"
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

rss_kib() {  # field (VmRSS or VmHWM) of each pid, as "pid:kib pid:kib"
  local field=$1 out="" pid; shift
  for pid in "$@"; do
    out+="$pid:$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status") "
  done
  echo "$out"
}
csv() { echo "$*" | tr ' ' ',' | sed 's/,*$//'; }

echo "Starting the demo federation on CPU 0..."
taskset -c 0 "$root/tools/demo.sh" --build-dir "$build_dir" --env-file "$work/fed.env" \
  >"$work/demo.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/fed.env" ] && break; sleep 0.1; done
[ -s "$work/fed.env" ] || { cat "$work/demo.log"; echo "bench.sh: the federation did not start" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/fed.env"
ss_pids=$(pgrep -f "darvoza-ss --config $DEMO_WORK" | tr '\n' ' ')
listen_address() {  # data_dir name: an address from a daemon's listen.json
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1] + "/listen.json"))[sys.argv[2]])' "$1" "$2"
}
metrics_urls="http://$(listen_address "$DEMO_WORK/ss2" metrics)/metrics http://$(listen_address "$DEMO_WORK/ss1" metrics)/metrics"
if [ "$compare_batching" = 1 ]; then
  echo "Starting a second demo federation, batch_signatures = false, on CPU 0..."
  taskset -c 0 "$root/tools/demo.sh" --build-dir "$build_dir" --env-file "$work/fed-nobatch.env" \
    --ss-setting "batch_signatures = false" >"$work/demo-nobatch.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do [ -s "$work/fed-nobatch.env" ] && break; sleep 0.1; done
  [ -s "$work/fed-nobatch.env" ] || { cat "$work/demo-nobatch.log"; echo "bench.sh: the second federation did not start" >&2; exit 1; }
  nobatch_work=$(sed -n 's/^DEMO_WORK=//p' "$work/fed-nobatch.env")
  nobatch_client_port=$(sed -n 's/^DEMO_CLIENT_PORT=//p' "$work/fed-nobatch.env")
  nobatch_ss_pids=$(pgrep -f "darvoza-ss --config $nobatch_work" | tr '\n' ' ')
  nobatch_backend_pid=$(pgrep -f "darvoza-example-backend.*$nobatch_work" | head -n 1)
  nobatch_metrics_urls="http://$(listen_address "$nobatch_work/ss2" metrics)/metrics http://$(listen_address "$nobatch_work/ss1" metrics)/metrics"
fi
# "messages signings" of each security server (consumer first), from its batch size histogram.
signings() {
  local url
  for url in "$@"; do
    curl -sf "$url" | awk '$1 == "darvoza_ss_signature_batch_size_sum" {s = $2}
                           $1 == "darvoza_ss_signature_batch_size_count" {c = $2}
                           END {printf "%d %d ", s, c}'
  done
}
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
events { worker_connections 4096; }
http {
  access_log off;
  client_max_body_size 8m;
  # Connections are never closed for having served "enough" requests (nginx's default is
  # 1000), and enough idle upstream connections are kept for 256 calls in flight: otherwise
  # nginx is measured reconnecting, not proxying.
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream hop_b { server 127.0.0.1:$hop_b; keepalive 512; keepalive_requests 10000000; }
  upstream backend { server $DEMO_BACKEND; keepalive 512; keepalive_requests 10000000; }
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
nginx_master=$(cat "$nginx_dir/nginx.pid")
# Master and workers: the workers do the proxying.
nginx_pids="$nginx_master $(pgrep -P "$nginx_master" | tr '\n' ' ')"

echo "Measuring the disk's fsync time..."
fsync_json=$(python3 - "$work" <<'PY'
import json, os, sys, time
path = os.path.join(sys.argv[1], "fsync.probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
samples = []
for i in range(300):
    os.write(fd, b"x" * 1024)
    t = time.perf_counter(); os.fsync(fd); samples.append(time.perf_counter() - t)
samples.sort()
print(json.dumps({"p50_us": int(samples[len(samples) // 2] * 1e6),
                  "p99_us": int(samples[int(len(samples) * 0.99)] * 1e6)}))
PY
)

sleep 2  # let start-up work (registration, first configuration fetch) settle
rss_idle_before=$(rss_kib VmRSS $ss_pids)

results="$work/results.jsonl"
: >"$results"
measure() {  # name body concurrency target [load options...]
  local name=$1 body=$2 conc=$3 target=$4; shift 4
  local out urls="" before="" after="" batching=""
  case "$name" in
    darvoza) urls=$metrics_urls ;;
    darvoza-nobatch) urls=$nobatch_metrics_urls ;;
  esac
  # shellcheck disable=SC2086
  [ -z "$urls" ] || before=$(signings $urls)
  if [[ $name == rest-* ]]; then
    out=$(taskset -c 1 "$rest_load" --url "$target" --concurrency "$conc" --seconds "$seconds" \
      --warmup "$warmup" --body-bytes "$body" "$@" || true)
  else
    out=$(taskset -c 1 "$load" --target "$target" --concurrency "$conc" --seconds "$seconds" \
      --warmup "$warmup" --body-bytes "$body" "$@" || true)
  fi
  [ -n "$out" ] || out='{"calls": 0, "errors": -1, "calls_per_second": 0, "p50_us": 0, "p90_us": 0, "p99_us": 0, "server_cpu_seconds": {}}'
  if [ -n "$urls" ]; then
    # shellcheck disable=SC2086
    after=$(signings $urls)
    # Over warm-up and load: envelopes signed and signings, per SS (consumer, provider).
    batching=$(echo "$before $after" | awk '{printf ", \"signatures\": {\"consumer\": {\"messages\": %d, \"signings\": %d}, \"provider\": {\"messages\": %d, \"signings\": %d}}", $5-$1, $6-$2, $7-$3, $8-$4}')
  fi
  echo "{\"name\": \"$name\", \"body_bytes\": $body, \"concurrency\": $conc, \"load\": $out$batching}" >>"$results"
  echo "  $name body=$body c=$conc: $out"
}
ss_cpu="ss=$(csv $ss_pids)"
echo "Running the loads ($seconds s each after $warmup s of warm-up)..."
for body in $bodies; do
  for c in $concurrencies; do
    measure direct "$body" "$c" "$DEMO_BACKEND" --cpu "backend=$backend_pid"
    measure darvoza "$body" "$c" "$DEMO_CLIENT_PORT" --client "$DEMO_CLIENT" \
      --service "$DEMO_SERVICE" --cpu "$ss_cpu" --cpu "backend=$backend_pid"
    if [ "$compare_batching" = 1 ]; then
      measure darvoza-nobatch "$body" "$c" "$nobatch_client_port" --client "$DEMO_CLIENT" \
        --service "$DEMO_SERVICE" --cpu "ss=$(csv $nobatch_ss_pids)" \
        --cpu "backend=$nobatch_backend_pid"
    fi
    measure nginx "$body" "$c" "127.0.0.1:$hop_a" --cpu "proxy=$(csv $nginx_pids)" \
      --cpu "backend=$backend_pid"
    measure rest-direct "$body" "$c" "http://$DEMO_CIVIL/echo" --cpu "backend=$civil_pid"
    measure rest-darvoza "$body" "$c" "http://$DEMO_REST_PORT/r1/$DEMO_REST_SERVICE/echo" \
      --header "X-Road-Client: $DEMO_CLIENT" --cpu "$ss_cpu" --cpu "backend=$civil_pid"
  done
done
sleep 2  # idle again: what the security servers keep after a load
rss_idle_after=$(rss_kib VmRSS $ss_pids)
rss_peak=$(rss_kib VmHWM $ss_pids)

# Every exchange of the loads is in the security servers' audit logs, and they verify offline:
# strictly (chain, seals, witness receipts, certificates), holding at least as many records as
# each SS counted appends (darvoza_ss_audit_appends_total; the logs also hold the set-up's
# administrative records).
echo "Verifying both security servers' audit logs..."
audit_verified=""
for name in ss1 ss2; do
  appended=$(curl -sf "http://$(listen_address "$DEMO_WORK/$name" metrics)/metrics" |
    awk '$1 == "darvoza_ss_audit_appends_total" {printf "%d", $2}')
  out=""
  for _ in $(seq 1 40); do  # the newest records are sealed within a second of the last load
    if ! out=$("$build_dir/tools/darvoza" audit verify "$DEMO_WORK/$name/audit" \
        --anchor "$DEMO_WORK/registry/anchor.bin" 2>&1); then
      echo "$out" >&2; echo "bench.sh: the audit log of $name does not verify" >&2; exit 1
    fi
    case "$out" in *"not yet sealed"*) sleep 0.5 ;; *) break ;; esac
  done
  records=$(echo "$out" | sed -n 's/^OK: records [0-9]*\.\.[0-9]* (\([0-9]*\) records.*/\1/p')
  if [ -z "$appended" ] || [ -z "$records" ] || [ "$records" -lt "$appended" ]; then
    echo "$out" >&2
    echo "bench.sh: $name's log verifies ${records:-no} records, its SS counted ${appended:-no} appends" >&2
    exit 1
  fi
  echo "  $name: $(echo "$out" | head -n 1); the SS counted $appended appends"
  audit_verified+="$name:$records:$appended "
done

audit_json="$work/audit.jsonl"
: >"$audit_json"
if [ "$audit_records" -gt 0 ]; then
  echo "Steady-state audit appends: a log of $audit_records records ($audit_log) against a fresh one..."
  mkdir -p "$(dirname "$audit_log")"
  TMPDIR="$work" taskset -c 0 "$bulk" --path "$audit_log" --records "$audit_records" \
    --steady "$audit_steady" >"$audit_json"
  cat "$audit_json"
fi

python3 - "$results" "$fsync_json" "$rss_idle_before" "$rss_idle_after" "$rss_peak" \
  "$audit_json" "$json_out" "$seconds" "$audit_verified" <<'PY'
import json, os, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
fsync = json.loads(sys.argv[2])
def rss(text):
    return {p.split(":")[0]: int(p.split(":")[1]) for p in text.split() if p.split(":")[1]}
rss_before, rss_after, rss_peak = rss(sys.argv[3]), rss(sys.argv[4]), rss(sys.argv[5])
audit = [json.loads(l) for l in open(sys.argv[6]) if l.strip()]
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
              if l.startswith("model name")), "unknown")
machine = {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
           "load_average_at_end": os.getloadavg()}

by = {(r["name"], r["body_bytes"], r["concurrency"]): r for r in rows}
for r in rows:
    l = r["load"]
    calls = max(l["calls"], 1)
    cpu = l.get("server_cpu_seconds", {})
    proxy = cpu.get("ss", cpu.get("proxy"))
    r["proxy_cpu_us_per_call"] = None if proxy is None else proxy * 1e6 / calls
    r["backend_cpu_us_per_call"] = cpu["backend"] * 1e6 / calls if "backend" in cpu else None

def rate(name, body, c):
    r = by.get((name, body, c))
    return r["load"]["calls_per_second"] if r and r["load"]["calls_per_second"] else None

mib = lambda kib: kib / 1024
print()
print(f"machine: {machine['cpus']} CPUs, {machine['cpu_model']}, kernel {machine['kernel']}")
print(f"disk fsync p50 {fsync['p50_us']} us, p99 {fsync['p99_us']} us")
for pid in rss_before:
    print(f"security server {pid}: RSS idle before {mib(rss_before[pid]):.1f} MiB, "
          f"idle after {mib(rss_after.get(pid, 0)):.1f} MiB, peak {mib(rss_peak.get(pid, 0)):.1f} MiB")
print()
print(f"{'path':15} {'body':>6} {'conc':>4} {'calls/s':>9} {'p50 us':>8} {'p99 us':>8}"
      f" {'proxy CPU':>10} {'backend CPU':>11} {'vs direct':>9} {'vs nginx':>8}")
print(f"{'':15} {'':>6} {'':>4} {'':>9} {'':>8} {'':>8} {'us/call':>10} {'us/call':>11}")
fmt = lambda v: "-" if v is None else f"{v:.0f}"
for r in rows:
    name, body, c, l = r["name"], r["body_bytes"], r["concurrency"], r["load"]
    rest = name.startswith("rest-")
    direct = rate("rest-direct" if rest else "direct", body, c)
    nginx = None if rest else rate("nginx", body, c)
    vs_direct = f"{l['calls_per_second'] / direct:.2f}" if direct else "-"
    vs_nginx = f"{l['calls_per_second'] / nginx:.2f}" if nginx and name != "nginx" else ""
    err = f"  ({l['errors']} errors)" if l.get("errors") else ""
    sig = r.get("signatures")
    if sig:
        c_sig, p_sig = sig["consumer"], sig["provider"]
        mean = lambda s: s["messages"] / s["signings"] if s["signings"] else 0
        per_call = ((c_sig["signings"] + p_sig["signings"]) / c_sig["messages"]
                    if c_sig["messages"] else 0)
        r["mean_batch"] = {"consumer": mean(c_sig), "provider": mean(p_sig)}
        r["signings_per_call"] = per_call
        err += (f"  batch {mean(c_sig):.1f}/{mean(p_sig):.1f}, {per_call:.2f} signings/call"
                f" ({per_call * l['calls_per_second']:.0f}/s)")
    print(f"{name:15} {body:>6} {c:>4} {l['calls_per_second']:>9.0f} {l['p50_us']:>8}"
          f" {l['p99_us']:>8} {fmt(r['proxy_cpu_us_per_call']):>10}"
          f" {fmt(r['backend_cpu_us_per_call']):>11} {vs_direct:>9} {vs_nginx:>8}{err}")
if audit:
    print()
    print(f"{'audit log':10} {'records':>10} {'appended':>9} {'rec/s':>7} {'CPU us/rec':>10}"
          f" {'compact rd B/rec':>16} {'compact wr B/rec':>16}")
    for a in audit:
        print(f"{a['log']:10} {a['records_before']:>10} {a['records_appended']:>9}"
              f" {a['records_per_second']:>7.0f} {a['cpu_us_per_record']:>10.1f}"
              f" {a['compaction_read_bytes_per_record']:>16.0f}"
              f" {a['compaction_write_bytes_per_record']:>16.0f}")
json.dump({"machine": machine, "seconds_per_load": float(sys.argv[8]), "fsync": fsync,
           "rss_kib": {"idle_before": rss_before, "idle_after": rss_after, "peak": rss_peak},
           "loads": rows, "audit_steady_state": audit,
           "audit_verified": {v.split(":")[0]: {"records": int(v.split(":")[1]),
                                                 "appends_counted": int(v.split(":")[2])}
                              for v in sys.argv[9].split()}},
          open(sys.argv[7], "w"), indent=1)
print(f"\nwrote {sys.argv[7]}")
PY
