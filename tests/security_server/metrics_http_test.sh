#!/bin/bash
# GET /metrics of a real darvoza-registry and darvoza-ss, as Prometheus scrapes it: curl, then
# `promtool check metrics` (HELP and TYPE for every family, valid names and values); the series
# an operator alerts on exist from the first scrape; a refused call from an unknown client is
# counted under the fixed label "-", never under the name the caller sent; health's reasons in
# `darvoza ss status`. Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/daemons.sh"
require_built "$CLI" "$REGD" "$SSD"
"$root/tools/install-deps.sh" prometheus >&2 || true
command -v promtool >/dev/null || { echo "skip: promtool (package prometheus) not installed"; exit 77; }
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }
# check_scrape ADDRESS OUT: scrapes and validates; fails naming promtool's complaint.
check_scrape() {
  curl -sf "http://$1/metrics" >"$2" || fail "GET http://$1/metrics failed"
  promtool check metrics <"$2" >"$2.lint" 2>&1 || fail "promtool: $(cat "$2.lint")"
  ! grep -q "Undocumented Darvoza metric" "$2" || fail "a family without HELP: $(grep -B1 Undocumented "$2")"
}
has() { grep -Eq "$2" "$1" || fail "no series matching '$2' in $(basename "$1"): $(cat "$1")"; }

start_registry
REG_METRICS=$(json "$TMP/reg/listen.json" metrics)
[ -n "$REG_METRICS" ] || fail "the registry's listen.json names no metrics address"
check_scrape "$REG_METRICS" "$TMP/reg.prom"
has "$TMP/reg.prom" '^darvoza_registry_conf_expiry_seconds [0-9]'
has "$TMP/reg.prom" '^darvoza_registry_cert_expiry_seconds\{cert="root-ca"\} [0-9]'
# Only /metrics, only GET.
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG_METRICS/other")" = 404 ] || fail "not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$REG_METRICS/metrics")" = 405 ] ||
  fail "POST not 405"

"$CLI" registry member add UZ/GOV/70000001 --name Tax --data-dir "$TMP/reg" >/dev/null
SS=$TMP/ss1
register_ss "$SS" UZ/GOV/70000001/ss1
sed -i 's/^rest_listen.*/rest_listen = "127.0.0.1:0"/' "$SS/ss.toml"
"$SSD" --config "$SS/ss.toml" 2>"$TMP/ss.log" &
SSPID=$!
PIDS+=($SSPID)
wait_for "test -s $SS/listen.json || ! kill -0 $SSPID" || true
test -s "$SS/listen.json" || fail "darvoza-ss did not start: $(cat "$TMP/ss.log")"
SS_METRICS=$(json "$SS/listen.json" metrics)
REST=$(json "$SS/listen.json" rest)
[ -n "$SS_METRICS" ] || fail "the SS's listen.json names no metrics address"

# A caller that is not a client of this SS: refused, counted without its made-up names.
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Road-Client: UZ/GOV/99999999/made-up-client' \
  "http://$REST/r1/UZ/GOV/70000001/made-up-subsystem/made-up-service")
[ "${code:0:1}" = 4 ] || [ "${code:0:1}" = 5 ] || fail "an unknown client was answered $code"

check_scrape "$SS_METRICS" "$TMP/ss.prom"
has "$TMP/ss.prom" '^darvoza_ss_registry_reachable [01]$'
has "$TMP/ss.prom" '^darvoza_ss_certificate_expiry_seconds\{kind="auth"\} [0-9]'
has "$TMP/ss.prom" '^darvoza_ss_audit_appends_total [0-9]'
has "$TMP/ss.prom" '^darvoza_ss_audit_wal_syncs_total [0-9]'
has "$TMP/ss.prom" '^darvoza_ss_serving [01]$'
has "$TMP/ss.prom" '^darvoza_ss_not_serving_reason\{reason="maintenance"\} 0$'
has "$TMP/ss.prom" '^darvoza_ss_exchanges_total\{client="-",fault="[A-Za-z.]+",role="consumer",service="-"\} 1$'
has "$TMP/ss.prom" '^darvoza_ss_exchange_duration_seconds_bucket\{role="consumer",le="\+Inf"\} 1$'
! grep -q made-up "$TMP/ss.prom" || fail "a caller's own names became labels: $(grep made-up "$TMP/ss.prom")"

# The configuration arrives, and with it the expiry gauge and SERVING.
wait_for "curl -sf http://$SS_METRICS/metrics | grep -q '^darvoza_ss_globalconf_expiry_seconds [0-9]'"
wait_for "curl -sf http://$SS_METRICS/metrics | grep -q '^darvoza_ss_serving 1$'"
"$CLI" ss status --data-dir "$SS" >"$TMP/st"
grep -q '^health  SERVING$' "$TMP/st" || fail "status: $(cat "$TMP/st")"
# Maintenance: NOT_SERVING, with the reason in the status and in the metrics.
"$CLI" ss maintenance on --data-dir "$SS" >/dev/null
"$CLI" ss status --data-dir "$SS" >"$TMP/st"
grep -q '^health  NOT_SERVING$' "$TMP/st" || fail "status: $(cat "$TMP/st")"
grep -q '^  maintenance: ' "$TMP/st" || fail "status without the reason: $(cat "$TMP/st")"
check_scrape "$SS_METRICS" "$TMP/ss2.prom"
has "$TMP/ss2.prom" '^darvoza_ss_not_serving_reason\{reason="maintenance"\} 1$'
has "$TMP/ss2.prom" '^darvoza_ss_serving 0$'
echo PASS
