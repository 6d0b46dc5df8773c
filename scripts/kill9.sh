#!/usr/bin/env bash
# kill9.sh: kill -9 fieldlink at random moments during concurrent incident POSTs, 50 times, and
# check that nothing the API acknowledged was lost or made twice.
#
# Run from the repository root:
#     scripts/kill9.sh                         # 50 kills, SQLite in a temporary data directory
#     KILLS=10 CLIENTS=4 scripts/kill9.sh      # fewer kills, fewer concurrent clients
#     SEED=42 scripts/kill9.sh                 # repeat a kill schedule (the seed is printed)
#     STORE_URL=postgres://root@127.0.0.1:5432/test scripts/kill9.sh
#                                              # PostgreSQL, in a fresh schema kill9_<pid>
#                                              # (dropped with psql when all passed, else kept)
# Needs: cargo, curl, python3 (standard library only). Builds the debug binary first
# (CARGO_TARGET_DIR is honoured). Exit status 0 when every check passed, 1 otherwise; the data
# directory and logs are kept on failure (the path is printed).
#
# What it does: starts `fieldlink` on a temporary data directory with a 2 s response target
# (the 1/3/5 rules' first target, shortened so the timers can be seen firing), reads the admin
# token from <data>/first-run-credentials.txt, and runs CLIENTS curl loops that POST
# /api/v1/incidents, each with a unique request_id. KILLS times it waits a random 0-999 ms
# and sends SIGKILL, then restarts on the same data directory and ports. A client whose request
# failed (connection refused or reset, 5xx) retries it with the SAME request_id, as a real client
# would, until it is answered.
#
# What it checks at the end, against the last start:
#   1. every request was finally acknowledged (201 created, or 200 replay), and no request_id was
#      ever answered with two different incident ids;
#   2. a first attempt is never answered 200 (a replay of something never sent);
#   3. POSTing every acknowledged request_id again answers 200 with the same incident id;
#   4. GET /api/v1/incidents lists each acknowledged request exactly once, with the acknowledged
#      id, by request_id and by description marker, and nothing else (count = acknowledged);
#   5. the timers ran: every incident has exactly one response_missed alarm, raised no earlier
#      than its original deadline (created_at + 2 s), including incidents created before a kill.

set -euo pipefail

KILLS=${KILLS:-50}
CLIENTS=${CLIENTS:-8}
SEED=${SEED:-$(( $(date +%s) % 32768 ))}
RESPONSE_S=2
RANDOM=$SEED

cd "$(dirname "$0")/.."
echo "kill9: building fieldlink (debug)"
cargo build -q -p fieldlink-server --bin fieldlink
BIN="${CARGO_TARGET_DIR:-target}/debug/fieldlink"
[ -x "$BIN" ] || { echo "kill9: no binary at $BIN"; exit 1; }

WORK=$(mktemp -d -t fieldlink-kill9.XXXXXX)
DATA="$WORK/data"
mkdir -p "$DATA"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP_PORT=$(free_port)
MQTT_PORT=$(free_port)
BASE="http://127.0.0.1:$HTTP_PORT"
cat > "$WORK/fieldlink.toml" <<EOF
[dispatch]
default_targets = { response_s = $RESPONSE_S, arrival_s = 3600, reinforcement_s = 3600 }
EOF
unset RUST_LOG FIELDLINK_CONFIG
if [ -n "${STORE_URL:-}" ]; then
    export FIELDLINK_STORE__URL="$STORE_URL"
    export FIELDLINK_STORE__PG_SCHEMA="kill9_$$"
    echo "kill9: store $STORE_URL schema $FIELDLINK_STORE__PG_SCHEMA"
fi
echo "kill9: KILLS=$KILLS CLIENTS=$CLIENTS SEED=$SEED work=$WORK"

PID=""
CLIENT_PIDS=()
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
    for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

start() {
    "$BIN" --config "$WORK/fieldlink.toml" --data "$DATA" \
        --http "127.0.0.1:$HTTP_PORT" --mqtt "127.0.0.1:$MQTT_PORT" --log-format json \
        >>"$WORK/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 600); do
        if curl -sf -o /dev/null "$BASE/readyz"; then return 0; fi
        if ! kill -0 "$PID" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "kill9: fieldlink did not become ready; last log lines:"
    tail -20 "$WORK/server.log"
    exit 1
}

# One client: POSTs incidents with request ids <tag>-c<n>-<i>; a failed attempt is retried with
# the same id until answered. Logs "attempt <request_id> <http status> <incident id or ->".
client() {
    local c=$1 i=0 rid code out id kinds=(lost_person flooding dispute fire traffic medical other)
    while [ ! -e "$WORK/stop" ]; do
        i=$((i + 1))
        rid="kill9-$SEED-c$c-$i"
        while :; do
            out=$(curl -s -m 10 -o "$WORK/c$c.body" -w '%{http_code}' \
                -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
                -d "{\"kind\":\"${kinds[i % 7]}\",\"lat\":31.2$((i % 100)),\"lon\":121.4$((c % 10)),\"description\":\"kill9 marker $rid\",\"request_id\":\"$rid\"}" \
                "$BASE/api/v1/incidents" 2>/dev/null) || out=${out:-000}
            code=${out:-000}
            id=-
            if [ "$code" = 200 ] || [ "$code" = 201 ]; then
                id=$(grep -o '"id":"inc_[A-Za-z0-9_]*"' "$WORK/c$c.body" | head -1 | cut -d'"' -f4 || true)
                id=${id:--}
            fi
            echo "attempt $rid $code $id" >>"$WORK/c$c.log"
            case "$code" in
                200 | 201) break ;;
                4??) break ;; # a refusal: reported by the check
                *) sleep 0.05 ;;
            esac
        done
    done
}

start
TOKEN=$(grep -o 'fl_tok_[A-Za-z0-9_]*' "$DATA/first-run-credentials.txt" | head -1)
export TOKEN
for c in $(seq 1 "$CLIENTS"); do
    client "$c" &
    CLIENT_PIDS+=($!)
done

for k in $(seq 1 "$KILLS"); do
    ms=$((RANDOM % 1000))
    sleep "$(printf '0.%03d' "$ms")"
    kill -9 "$PID"
    wait "$PID" 2>/dev/null || true
    printf '\rkill9: kill %d/%d (after %3d ms)' "$k" "$KILLS" "$ms"
    start
done
echo
touch "$WORK/stop"
for p in "${CLIENT_PIDS[@]}"; do wait "$p"; done
CLIENT_PIDS=()
echo "kill9: clients done; waiting for the response timers"
sleep $((RESPONSE_S + 2))

set +e
KILLS=$KILLS BASE=$BASE TOKEN=$TOKEN WORK=$WORK RESPONSE_S=$RESPONSE_S python3 - <<'PY'
import glob, json, os, sys, time, urllib.request, urllib.error

base, token, work = os.environ["BASE"], os.environ["TOKEN"], os.environ["WORK"]
response_ms = int(os.environ["RESPONSE_S"]) * 1000
problems = []

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

acked, attempts, failed, replayed, created_on_retry, sent = {}, 0, 0, 0, 0, set()
for path in sorted(glob.glob(os.path.join(work, "c*.log"))):
    for line in open(path):
        _, rid, code, iid = line.split()
        attempts += 1
        first = rid not in sent
        sent.add(rid)
        if code in ("200", "201"):
            if first and code == "200":
                problems.append(f"{rid}: first attempt answered 200")
            if not first:
                if code == "200": replayed += 1
                else: created_on_retry += 1
            if rid in acked and acked[rid] != iid:
                problems.append(f"{rid}: acknowledged as {acked[rid]} and as {iid}")
            acked.setdefault(rid, iid)
        elif code.startswith("4"):
            problems.append(f"{rid}: refused with {code}")
        else:
            failed += 1
missing = sent - set(acked)
if missing:
    problems.append(f"{len(missing)} requests never acknowledged, e.g. {sorted(missing)[:3]}")

for rid, iid in acked.items():
    code, v = call("POST", "/api/v1/incidents", {"kind": "other", "lat": 31.2, "lon": 121.4,
        "description": "kill9 marker " + rid, "request_id": rid})
    got = (v or {}).get("incident", {}).get("id")
    if code != 200 or got != iid:
        problems.append(f"replay of {rid}: {code} {got}, expected 200 {iid}")

_, v = call("GET", "/api/v1/incidents")
incidents = v["incidents"]
by_rid, by_marker = {}, {}
for i in incidents:
    by_rid.setdefault(i.get("request_id"), []).append(i["id"])
    by_marker[i.get("description")] = by_marker.get(i.get("description"), 0) + 1
dups = {r: ids for r, ids in by_rid.items() if len(ids) > 1}
dups_marker = [d for d, n in by_marker.items() if n > 1]
if dups: problems.append(f"duplicates by request_id: {dups}")
if dups_marker: problems.append(f"duplicates by description: {dups_marker[:5]}")
for rid, iid in acked.items():
    if by_rid.get(rid) != [iid]:
        problems.append(f"acknowledged {rid} -> {iid} but listed {by_rid.get(rid)}")
if len(incidents) != len(acked):
    problems.append(f"{len(incidents)} incidents listed, {len(acked)} acknowledged")

created = {i["id"]: i["created_at"] for i in incidents}
deadline = time.time() + 20
while True:
    _, v = call("GET", "/api/v1/alarms")
    alarms = [a for a in v["alarms"] if a["kind"]["type"] == "response_missed"]
    per = {}
    for a in alarms:
        per.setdefault(a["incident"], []).append(a["raised_at"])
    if set(created) <= set(per) or time.time() > deadline:
        break
    time.sleep(0.5)
no_alarm = [i for i in created if i not in per]
twice = {i: r for i, r in per.items() if len(r) > 1}
early = [i for i, r in per.items() if i in created and min(r) < created[i] + response_ms]
if no_alarm: problems.append(f"{len(no_alarm)} incidents without a response alarm: {no_alarm[:5]}")
if twice: problems.append(f"response alarm raised more than once: {twice}")
if early: problems.append(f"alarm before the original deadline: {early[:5]}")
late = max((min(r) - created[i] - response_ms for i, r in per.items() if i in created), default=0)

print(f"kill9: {os.environ['KILLS']} kills; {len(sent)} requests, {attempts} attempts, "
      f"{failed} failed attempts (retried with the same request_id)")
print(f"kill9: {len(acked)} acknowledged; retries answered as replays (committed before the "
      f"kill): {replayed}; created on retry: {created_on_retry}")
print(f"kill9: {len(incidents)} incidents listed; duplicates: {len(dups) + len(dups_marker)}; "
      f"response alarms: {len(alarms)} (latest {late} ms after its deadline)")
for p in problems[:20]:
    print("kill9: FAIL:", p)
print("kill9: " + ("FAILED" if problems else "OK: nothing acknowledged was lost or made twice"))
sys.exit(1 if problems else 0)
PY
rc=$?
kill -9 "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
PID=""
if [ "$rc" = 0 ]; then
    rm -rf "$WORK"
    if [ -n "${STORE_URL:-}" ] && command -v psql >/dev/null; then
        PGOPTIONS="-c client_min_messages=warning" psql "$STORE_URL" -qc "DROP SCHEMA IF EXISTS $FIELDLINK_STORE__PG_SCHEMA CASCADE" || true
    fi
else
    echo "kill9: kept $WORK${STORE_URL:+ and schema $FIELDLINK_STORE__PG_SCHEMA}"
fi
exit "$rc"
