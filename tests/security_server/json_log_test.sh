#!/bin/bash
# The event log as an operator's tools read it (docs/operator.md, "The event log"): a registry
# and a security server started with --log-format=json. Every line either writes must be one
# JSON object, and these events must each be one line with their fields: start (version, allocator and
# bound addresses), a registration request and its approval, a published configuration, the
# SS accepting it, a refused call (with the fault the caller received), the log level re-read
# on SIGHUP, stop. A hostile client header must not break a line.
# Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
require_built "$CLI" "$REGD" "$SSD"
# Debian's python3-grpcio (tools/install-deps.sh) is the independent client of the refused call;
# it is in the system Python, which a pyenv or venv python3 on PATH may hide.
/usr/bin/python3 -c 'import grpc' || { echo "skip: python3-grpcio is not installed"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }

# events FILE EVENT [KEY=VALUE...]: prints the lines of FILE whose "event" is EVENT and whose
# fields hold each KEY=VALUE (VALUE "*" = present and not empty); exits 1 when a line of FILE is
# not a JSON object or no line matches.
events() {
  python3 - "$@" <<'PY'
import json, sys
path, event, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
found = 0
for n, raw in enumerate(open(path, 'rb').read().split(b'\n')[:-1], 1):
    try:
        obj = json.loads(raw.decode('utf-8', 'strict'))
        assert isinstance(obj, dict) and 'time' in obj and 'level' in obj and 'program' in obj
    except Exception as e:
        print(f'{path}:{n}: not a JSON event line ({type(e).__name__}): {raw[:200]!r}')
        sys.exit(1)
    if obj.get('event') != event:
        continue
    ok = True
    for kv in wanted:
        k, v = kv.split('=', 1)
        got = obj.get(k)
        if (v == '*' and (got is None or got == '')) or (v != '*' and str(got) != v):
            ok = False
    if ok:
        found += 1
        print(json.dumps(obj))
sys.exit(0 if found else 1)
PY
}

start_registry --log-format=json
"$CLI" registry member add UZ/GOV/70000001 --name Tax --data-dir "$TMP/reg" >/dev/null
events "$TMP/reg.log" start program=darvoza-registry "version=*" "public=$REG" "admin=*" \
  "ops=*" "malloc=*" >/dev/null || fail "no start event: $(cat "$TMP/reg.log")"
events "$TMP/reg.log" member.add subject=member:UZ/GOV/70000001 detail=Tax >/dev/null ||
  fail "no member.add event: $(cat "$TMP/reg.log")"

SS=$TMP/ss1
register_ss "$SS" UZ/GOV/70000001/ss1
ID=$(sed -n 's/^registration request \([0-9a-f]*\): PENDING$/\1/p' "$TMP/register.out")
events "$TMP/reg.log" request.server actor=registration subject=server:UZ/GOV/70000001/ss1 \
  "detail=request $ID" >/dev/null || fail "no registration event: $(cat "$TMP/reg.log")"
events "$TMP/reg.log" request.approve subject=server:UZ/GOV/70000001/ss1 >/dev/null ||
  fail "no approval event: $(cat "$TMP/reg.log")"
SERIAL=$(events "$TMP/reg.log" conf.publish | tail -1 |
  python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["subject"].split()[1])')
[ -n "$SERIAL" ] || fail "no conf.publish event"

sed -i 's/^rest_listen = .*/rest_listen = "127.0.0.1:0"/' "$SS/ss.toml"
"$SSD" --config "$SS/ss.toml" --log-format=json 2>"$TMP/ss.log" &
SSPID=$!
PIDS+=($SSPID)
wait_for "test -s $SS/listen.json"
CLIENT=$(json "$SS/listen.json" client)
wait_for "events $TMP/ss.log start"
events "$TMP/ss.log" start program=darvoza-ss "version=*" server=UZ/GOV/70000001/ss1 \
  "client=$CLIENT" "ss=$(json "$SS/listen.json" ss)" "ops=*" "malloc=*" >/dev/null ||
  fail "start event without the bound addresses: $(cat "$TMP/ss.log")"
wait_for "events $TMP/ss.log conf.updated serial=$SERIAL"
events "$TMP/ss.log" registry.reachable >/dev/null || fail "no registry.reachable event"

# A refused call: an unknown client subsystem, and a hostile user id header (quotes,
# backslashes, a JSON fragment; gRPC itself refuses line breaks in metadata).
FAULT=$(/usr/bin/python3 - "$CLIENT" <<'PY'
import grpc, sys
channel = grpc.insecure_channel(sys.argv[1])
call = channel.unary_unary('/pkg.Tax/GetDebt')
try:
    call(b'', timeout=30, metadata=[
        ('x-road-client', 'UZ/GOV/70000001/unknown'),
        ('x-road-service', 'UZ/GOV/70000001/tax-registry/pkg.Tax.GetDebt'),
        ('x-road-userid', 'EE"}{"event":"forged\\"x'),
    ])
    print('not refused')
except grpc.RpcError as e:
    print(dict(e.trailing_metadata() or ()).get('x-road-error', 'no fault: ' + e.details()))
PY
)
case "$FAULT" in Client.*|Server.*) ;; *) fail "the call was not refused with a fault: $FAULT" ;; esac
wait_for "events $TMP/ss.log call.refused side=consumer fault=$FAULT"
events "$TMP/ss.log" call.refused side=consumer "fault=$FAULT" "code=*" >/dev/null
if events "$TMP/ss.log" forged >/dev/null; then fail "a header forged an event line"; fi

# A refused REST call names the client's address like a gRPC one.
REST=$(json "$SS/listen.json" rest)
curl -s -o /dev/null -H 'X-Road-Client: UZ/GOV/70000001/unknown' -H 'X-Road-Id: rest-refusal-1' \
  "http://$REST/r1/UZ/GOV/70000001/tax-registry/debts" || fail "the REST port did not answer"
wait_for "events $TMP/ss.log call.refused message_id=rest-refusal-1"
events "$TMP/ss.log" call.refused side=consumer message_id=rest-refusal-1 "fault=*" "peer=*" |
  grep -q '"peer": "ipv4:127.0.0.1:' || fail "the REST refusal names no client address"

# SIGHUP re-reads log_level from the configuration file.
echo 'log_level = "debug"' >>"$SS/ss.toml"
kill -HUP $SSPID
wait_for "events $TMP/ss.log log.level old=info new=debug"

kill -TERM $SSPID
wait $SSPID || fail "darvoza-ss exited non-zero on SIGTERM"
events "$TMP/ss.log" stop signal=15 >/dev/null || fail "no stop event"
events "$TMP/ss.log" stopped >/dev/null || fail "no stopped event"
# Every line both daemons wrote is a JSON event line (events exits 1 on any other line).
events "$TMP/ss.log" start >/dev/null
events "$TMP/reg.log" start >/dev/null
if grep -q "No match found for server name" "$TMP/reg.log" "$TMP/ss.log"; then
  fail "gRPC's connection noise is logged at info"
fi
echo "ok: JSON event lines from darvoza-registry ($(wc -l <"$TMP/reg.log")) and darvoza-ss ($(wc -l <"$TMP/ss.log"))"
