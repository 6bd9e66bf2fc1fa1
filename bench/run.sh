#!/usr/bin/env bash
# Benchmark harness for ngx_ai_gateway_module (see docs/benchmarks.md).
#
#   bench/run.sh            full run: every case, callgrind, report, chart
#   bench/run.sh check      only the one-request correctness check of each case
#   bench/run.sh list       list the cases
#
# Normally started as `./build.sh bench`, which builds
# build/ngx_ai_gateway_module.so first. Everything listens on 127.0.0.1
# only, every process started here is stopped on exit, and every step is
# bounded in time. Results: bench/results/<stamp>/ (ignored by git), with
# bench/results/latest -> it; a full run also rewrites the results section
# of docs/benchmarks.md and docs/benchmarks.svg.
#
# Knobs (environment):
#   BENCH_SECONDS=10          length of each measured wrk run
#   BENCH_WARMUP_SECONDS=2    wrk warm-up before each case
#   BENCH_CONNECTIONS=32      wrk connections for the throughput run
#   BENCH_REPEAT=1            measured runs per case; the report keeps the one
#                             least disturbed by other processes
#   BENCH_LIGHT_CONNECTIONS=12 BENCH_LIGHT_RATE=3000
#                             light-load run: random pauses paced to about
#                             RATE requests/s
#   BENCH_SEQ_REQUESTS=2000   requests of the one-client back-to-back run (latency
#                             without load; time to first byte for streams)
#   BENCH_CALLGRIND=1         0 skips the instruction counts
#   BENCH_CALLGRIND_REQUESTS=2000 BENCH_CALLGRIND_WARMUP=200
#   BENCH_CALLGRIND_CASES=... the cases counted (default: plain and gateway,
#                             gw-governed among them)
#   BENCH_CASES=a,b,...       run only these cases (names from `list`)
#   BENCH_SERVER_CPU=0 BENCH_CLIENT_CPU=1 BENCH_MOCK_CPU=0
#                             taskset cores: server under test / wrk and
#                             the Perl client / the static mock
#   BENCH_NICE=-10            priority of the benchmark's processes (0: none)
#   BENCH_PORT_BASE=19100     mock +1, server under test +2, Portkey +3,
#                             second callgrind server +4, redis-server +5
#                             (gw-governed-lease)
#   BENCH_MOCK=nginx          `perl` uses t/lib/mock_provider.pl as the
#                             provider instead (correctness checks only)
#   BENCH_MODULE=build/ngx_ai_gateway_module.so   BENCH_NGINX=/usr/sbin/nginx
#   BENCH_UPDATE_DOCS=1       0 leaves docs/ untouched (default 0 with BENCH_CASES)
#   BENCH_KEEP_RESULTS=10     result directories kept in bench/results

set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
MODE=${1:-run}

S=${BENCH_SECONDS:-10}
WARM=${BENCH_WARMUP_SECONDS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
LCONNS=${BENCH_LIGHT_CONNECTIONS:-12}
LRATE=${BENCH_LIGHT_RATE:-3000}
SEQ_N=${BENCH_SEQ_REQUESTS:-2000}
REPEAT=${BENCH_REPEAT:-1}
KEEP=${BENCH_KEEP_RESULTS:-10}
[ "$KEEP" -ge 1 ] 2>/dev/null || KEEP=1
CG=${BENCH_CALLGRIND:-1}
CG_N=${BENCH_CALLGRIND_REQUESTS:-2000}
CG_WARM=${BENCH_CALLGRIND_WARMUP:-200}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
MCPU=${BENCH_MOCK_CPU:-0}
PORT_BASE=${BENCH_PORT_BASE:-19100}
MOCK_PORT=$((PORT_BASE + 1))
SUT_PORT=$((PORT_BASE + 2))
PK_PORT=$((PORT_BASE + 3))
CG_PORT2=$((PORT_BASE + 4))   # the second, parallel callgrind run
REDIS_PORT=$((PORT_BASE + 5)) # gw-governed-lease's Redis
REDIS=${BENCH_REDIS_SERVER:-/usr/bin/redis-server}
MOCK_KIND=${BENCH_MOCK:-nginx}
MODULE=${BENCH_MODULE:-$ROOT/build/ngx_ai_gateway_module.so}
NGINX=${BENCH_NGINX:-/usr/sbin/nginx}
CASES_FILTER=${BENCH_CASES:-}
if [ -n "$CASES_FILTER" ]; then UPDATE_DOCS=${BENCH_UPDATE_DOCS:-0}
else UPDATE_DOCS=${BENCH_UPDATE_DOCS:-1}; fi

export BENCH_OPENAI_KEY=sk-bench-openai-0000
export BENCH_ANTHROPIC_KEY=sk-ant-bench-0000

# pin CPU CMD...: run on one core, at BENCH_NICE priority (default -10: the
# benchmark's processes win over other work on a shared machine; they are
# time-bounded).
NICE=${BENCH_NICE:--10}
NICE_PFX=()
[ "$NICE" != 0 ] && [ "$(id -u)" = 0 ] && NICE_PFX=(nice -n "$NICE")
# (background jobs use "${NICE_PFX[@]}" taskset directly, so that $! is the
# process itself and not a subshell)
pin() { local cpu=$1; shift; "${NICE_PFX[@]}" taskset -c "$cpu" "$@"; }
# tpin SECONDS CPU CMD...: the same, killed after SECONDS. Run as a job
# and waited for, so that Ctrl-C / SIGTERM reach the cleanup at once
# (bash runs traps only after a foreground command ends, and timeout puts
# its command in a process group of its own, which Ctrl-C does not reach).
FG_PID=
tpin() {
    local t=$1 cpu=$2 rc; shift 2
    timeout "$t" "${NICE_PFX[@]}" taskset -c "$cpu" "$@" &
    FG_PID=$!
    wait "$FG_PID"; rc=$?
    FG_PID=
    return "$rc"
}

# log to the stderr the script started with (fd 9), also from inside a
# function whose output is redirected (a trap may run there)
exec 9>&2
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&9; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cases
# name|kind|path|model|stream|check|plain baseline|direct baseline|label
# kind: direct (wrk -> mock), plain (nginx proxy_pass -> mock),
#       gateway (nginx + module -> mock), portkey (Portkey on Node -> mock)
CASES=(
"direct-openai|direct|/v1/chat/completions|gpt-4o|0|chat|||mock, direct (OpenAI JSON)"
"direct-anthropic|direct|/v1/messages|claude-x|0|anthropic|||mock, direct (Anthropic JSON)"
"direct-sse|direct|/sse/v1/chat/completions|gpt-4o|1|chat-sse|||mock, direct (OpenAI SSE)"
"direct-sse-anthropic|direct|/sse/v1/messages|claude-x|1|anthropic-sse|||mock, direct (Anthropic SSE)"
"plain-openai|plain|/v1/chat/completions|openai/gpt-4o|0|chat||direct-openai|a) nginx proxy_pass"
"plain-anthropic|plain|/v1/messages|anthropic/claude-x|0|anthropic||direct-anthropic|nginx proxy_pass, Anthropic bytes"
"plain-sse|plain|/sse/v1/chat/completions|openai/gpt-4o|1|chat-sse||direct-sse|nginx proxy_pass, OpenAI SSE"
"plain-sse-anthropic|plain|/sse/v1/messages|anthropic/claude-x|1|anthropic-sse||direct-sse-anthropic|nginx proxy_pass, Anthropic SSE"
"gw-openai|gateway|/v1/chat/completions|openai/gpt-4o|0|chat|plain-openai|direct-openai|b) gateway, openai provider"
"gw-governed|gateway|/v1/chat/completions|openai/gpt-4o|0|chat|plain-openai|direct-openai|h) b) governed: client key, rpm/tpm, ledger+budget, metrics"
"plain-openai-4k|plain|/v1/chat/completions|openai/gpt-4o|0|chat||direct-openai|nginx proxy_pass, a 4 KB prompt"
"gw-openai-4k|gateway|/v1/chat/completions|openai/gpt-4o|0|chat|plain-openai-4k|direct-openai|b) gateway, openai provider, a 4 KB prompt"
"gw-anthropic|gateway|/v1/chat/completions|anthropic/claude-x|0|chat|plain-anthropic|direct-anthropic|c) gateway, Anthropic translated"
"gw-fallback|gateway|/fb/v1/chat/completions|fail/gpt-4o-status500|0|chat|plain-openai|direct-openai|d) gateway, fallback after a 500"
"gw-fallback-breaker|gateway|/fb/v1/chat/completions|fail/gpt-4o-status500|0|chat|plain-openai|direct-openai|d) the same, breaker open: 500 skipped"
"gw-stream-openai|gateway|/v1/chat/completions|openaisse/gpt-4o|1|chat-sse|plain-sse|direct-sse|e) gateway, streaming (OpenAI)"
"gw-governed-stream|gateway|/v1/chat/completions|openaisse/gpt-4o|1|chat-sse|plain-sse|direct-sse|h) e) governed: client key, rpm/tpm, ledger+budget, metrics"
"gw-governed-lease|gateway|/v1/chat/completions|openai/gpt-4o|0|chat|plain-openai|direct-openai|i) h) with its rate zone synced through Redis (sync_mode=lease)"
"gw-fusion|gateway|/fusion/v1/chat/completions|fusion|0|chat|plain-openai|direct-openai|g) fusion: 3 members + a merge judge (2 round trips)"
"gw-stream-anthropic|gateway|/v1/chat/completions|anthropicsse/claude-x|1|chat-sse|plain-sse-anthropic|direct-sse-anthropic|e) gateway, streaming (Anthropic translated)"
"plain-cache|plain|/cache/v1/chat/completions|openai/gpt-4o|0|chat||direct-openai|nginx proxy_cache hit (POST keyed by the body)"
"gw-cache|gateway|/v1/chat/completions|openai/gpt-4o|0|chat|plain-cache|direct-openai|i) gateway, ai_cache hit (no provider call)"
"gw-cache-stream|gateway|/v1/chat/completions|openaisse/gpt-4o|1|chat-sse|plain-sse|direct-sse|i) gateway, ai_cache hit replayed as a stream"
"portkey-openai|portkey|/v1/chat/completions|gpt-4o|0|chat|plain-openai|direct-openai|f) Portkey 1.15.2, openai"
"portkey-stream|portkey|/v1/chat/completions|gpt-4o|1|chat-sse|plain-sse|direct-sse|f) Portkey 1.15.2, streaming"
)
# cases whose instructions per request callgrind counts
CG_CASES=${BENCH_CALLGRIND_CASES:-plain-openai,gw-openai,gw-governed,plain-cache,gw-cache,plain-openai-4k,gw-openai-4k,plain-anthropic,gw-anthropic,gw-fallback,gw-fallback-breaker,plain-sse,gw-stream-openai,plain-sse-anthropic,gw-stream-anthropic,gw-fusion}

case_field() { # case_field NAME FIELD_INDEX
    local c
    for c in "${CASES[@]}"; do
        [ "${c%%|*}" = "$1" ] && { cut -d'|' -f"$2" <<<"$c"; return 0; }
    done
    return 1
}
selected() { # selected NAME: is the case in BENCH_CASES (or no filter)?
    [ -z "$CASES_FILTER" ] && return 0
    [[ ",$CASES_FILTER," == *",$1,"* ]]
}

if [ "$MODE" = list ]; then
    for c in "${CASES[@]}"; do
        IFS='|' read -r n k p m st ck pb db label <<<"$c"
        printf '%-22s %-8s %-26s %s\n' "$n" "$k" "$p" "$label"
    done
    exit 0
fi
case "$MODE" in run|check) ;; *) die "usage: $0 [run|check|list]" ;; esac
[ "$MOCK_KIND" = perl ] && [ "$MODE" = run ] && {
    log "BENCH_MOCK=perl: t/lib/mock_provider.pl is for correctness checks only; running 'check'"
    MODE=check
}

# ---------------------------------------------------------------- helpers
# processes started here: "pid:name"; stopped by pid in cleanup
PIDS=()
cleanup() {
    local e pid
    # the running wrk / client (timeout passes the signal on to it)
    [ -n "$FG_PID" ] && kill -TERM "$FG_PID" 2>/dev/null
    for e in "${PIDS[@]}"; do
        pid=${e%%:*}
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
        fi
    done
    for e in "${PIDS[@]}"; do
        pid=${e%%:*}
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    PIDS=()
}
forget_pid() {
    local keep=() e
    for e in "${PIDS[@]}"; do [ "${e%%:*}" = "$1" ] || keep+=("$e"); done
    PIDS=("${keep[@]}")
}

wait_port() { # wait_port PORT SECONDS [PID: give up when it exits]
    local i
    for i in $(seq $(($2 * 20))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Request bodies: the same body for a gateway case and its baselines, only
# the model differs (the mock ignores request bodies).  Cases named *-4k
# send a prompt of about 4 KB (with escaped quotes and line feeds), the
# size of a chat with a system prompt and a few turns.
write_body() { # write_body FILE MODEL STREAM [CASE]
    local s='' u='Say hello in one short sentence.' i
    [ "$3" = 1 ] && s=',"stream":true'
    case "${4:-}" in
    *-4k)
        u='Summarise these notes in three bullet points.\n\n'
        for i in $(seq 1 36); do
            u="${u}Note $i: the team discussed the \\\"Q3 roadmap\\\", the latency budget of the edge gateway and the rollout plan.\n"
        done ;;
    esac
    printf '{"model":"%s","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"%s"}],"max_tokens":64,"temperature":0.2%s}' \
        "$2" "$u" "$s" >"$1"
}

# nginx_quote FILE: the file as a single-quoted nginx string
nginx_quote() {
    perl -0777 -ne '
        die "\$ in mock body\n" if /\$/;
        s/\\/\\\\/g; s/\x27/\\\x27/g; s/\n/\\n/g; print "\x27$_\x27";' "$1"
}

conf_head() { # conf_head PREFIX [extra main-context lines]
    local extra=${2:-}
    cat <<EOF
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
$extra
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_buffer_size 64k;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

# The static mock provider: canned, byte-identical answers from memory,
# one native path per behaviour (it cannot look at request bodies).
mock_conf() {
    local p=$1 M=$BENCH/mock
    conf_head "$p"
    cat <<EOF
    server {
        listen 127.0.0.1:$MOCK_PORT;
        location = /v1/chat/completions {
            default_type application/json;
            return 200 $(nginx_quote "$M/openai.json");
        }
        location = /v1/messages {
            default_type application/json;
            return 200 $(nginx_quote "$M/anthropic.json");
        }
        location = /sse/v1/chat/completions {
            default_type text/event-stream;
            return 200 $(nginx_quote "$M/openai.sse");
        }
        location = /sse/v1/messages {
            default_type text/event-stream;
            return 200 $(nginx_quote "$M/anthropic.sse");
        }
        location /fail/ {
            default_type application/json;
            return 500 $(nginx_quote "$M/fail500.json");
        }
        location / {
            default_type application/json;
            return 404 '{"error":{"message":"mock: no such path","type":"invalid_request_error","param":null,"code":null}}';
        }
    }
}
EOF
}

# where each provider's pass location sends its subrequests
upstream_uri() { # upstream_uri PREFIX -> http://mock_upstream/PREFIX
    if [ "$MOCK_KIND" = perl ]; then echo "http://mock_upstream/"
    else echo "http://mock_upstream/$1"; fi
}

upstream_block() {
    cat <<EOF
    upstream mock_upstream {
        server 127.0.0.1:$MOCK_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
EOF
}

plain_conf() { # plain_conf PREFIX [main-context extra]
    conf_head "$1" "${2:-}"
    upstream_block
    if [ "${PLAIN_CACHE:-0}" = 1 ]; then
        # plain-cache: nginx's own proxy_cache in front of the mock, a
        # POST keyed by its body, the baseline of the ai_cache hit
        cat <<EOF
    proxy_cache_path $1/pcache keys_zone=pc:10m;
    server {
        listen 127.0.0.1:${LISTEN_PORT:-$SUT_PORT};
        location /cache/ {
            proxy_pass http://mock_upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache pc;
            proxy_cache_methods POST;
            proxy_cache_key \$request_uri\$request_body;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
        }
    }
}
EOF
        return 0
    fi
    cat <<EOF
    server {
        listen 127.0.0.1:${LISTEN_PORT:-$SUT_PORT};
        location / {
            proxy_pass http://mock_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /sse/ {
            proxy_pass http://mock_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
}

pass_location() { # pass_location NAME PREFIX STREAM
    cat <<EOF
        location /_ai/$1/ {
            internal;
            proxy_pass $(upstream_uri "$2");
            proxy_http_version 1.1;
            proxy_set_header Connection "";
EOF
    [ "$3" = 1 ] && echo "            proxy_buffering off;"
    echo "        }"
}

# gateway_conf PREFIX CASE [main-context extra]: only the providers the case
# needs, so that a provider type the module does not support yet fails
# that case alone.
gateway_conf() {
    local p=$1 c=$2 prov='' locs='' fb='' GOV_LOC=''
    case "$c" in
    gw-openai|gw-openai-4k)
        prov="ai_provider openai type=openai pass=/_ai/openai key=env:BENCH_OPENAI_KEY;"
        locs=$(pass_location openai "" 0) ;;
    gw-anthropic)
        prov="ai_provider anthropic type=anthropic pass=/_ai/anthropic key=env:BENCH_ANTHROPIC_KEY;"
        locs=$(pass_location anthropic "" 0) ;;
    gw-fallback|gw-fallback-breaker)
        # gw-fallback: breaker=off, so that every request really calls the
        # failing provider first; gw-fallback-breaker: the default breaker,
        # which opens after 5 failures and then skips the failing provider
        # (one probe per cool-down)
        local brk=' breaker=off'
        [ "$c" = gw-fallback-breaker ] && brk=''
        prov="ai_provider fail type=openai pass=/_ai/fail key=env:BENCH_OPENAI_KEY;
    ai_provider openai type=openai pass=/_ai/openai key=env:BENCH_OPENAI_KEY;"
        locs="$(pass_location fail fail/ 0)
$(pass_location openai "" 0)"
        fb="        location /fb/v1/ {
            ai_gateway;
            ai_fallback fail/gpt-4o-status500 openai/gpt-4o$brk;
        }
" ;;
    gw-fusion)
        # every member and the judge answer from the same static mock: the
        # critical path is two upstream round trips (members, then judge)
        prov="ai_provider openai type=openai pass=/_ai/openai key=env:BENCH_OPENAI_KEY;"
        locs=$(pass_location openai "" 0)
        fb="        location /fusion/v1/ {
            ai_gateway;
            ai_pool openai/m1 openai/m2 openai/m3 judge=openai/judge mode=merge;
        }
" ;;
    gw-stream-openai)
        prov="ai_provider openaisse type=openai pass=/_ai/openaisse key=env:BENCH_OPENAI_KEY;"
        locs=$(pass_location openaisse sse/ 1) ;;
    gw-governed|gw-governed-stream|gw-governed-lease)
        # governance on: the client's key checked against an ai_keys file
        # (its SHA-256), a rate bucket (rpm and tpm) and a budget account
        # per key name, the ledger, the metrics zone (ai_status); limits
        # high enough never to refuse
        local pv=openai sse='' st=0
        local rsync=''
        [ "$c" = gw-governed-stream ] && { pv=openaisse; sse=sse/; st=1; }
        [ "$c" = gw-governed-lease ] \
            && rsync=" sync=redis://127.0.0.1:$REDIS_PORT sync_interval=100ms"
        printf 'sha256:%s name=bench team=bench\n' \
            "$(printf %s sk-bench-client | sha256sum | cut -d' ' -f1)" >"$p/bench.keys"
        prov="ai_provider $pv type=openai pass=/_ai/$pv key=env:BENCH_OPENAI_KEY;
    ai_price $pv/gpt-4o 2.50 10.00;
    ai_keys bench file=$p/bench.keys;
    ai_auth bench;
    ai_rate_zone gov_rate:16m$rsync;
    ai_cost_zone gov_cost:16m;
    ai_metrics_zone gov_metrics:16m;"
        locs="$(pass_location $pv "$sse" $st)
        location = /ai/status {
            ai_status;
        }"
        GOV_LOC="            ai_rate zone=gov_rate rpm=1000000000 tpm=1000000000;
            ai_cost zone=gov_cost budget=1000000/day;" ;;
    gw-cache|gw-cache-stream)
        # every request after the first is a hit: the stored answer sent
        # from its cache file (to a stream: replayed as chunks);
        # sampling=on, for the bench's body asks for temperature 0.2
        local pv=openai sse='' st=0
        [ "$c" = gw-cache-stream ] && { pv=openaisse; sse=sse/; st=1; }
        prov="ai_provider $pv type=openai pass=/_ai/$pv key=env:BENCH_OPENAI_KEY;
    ai_cache_path $p/aicache keys_zone=aic:10m;"
        locs=$(pass_location $pv "$sse" $st)
        GOV_LOC="            ai_cache aic scope=global sampling=on;" ;;
    gw-stream-anthropic)
        prov="ai_provider anthropicsse type=anthropic pass=/_ai/anthropicsse key=env:BENCH_ANTHROPIC_KEY;"
        locs=$(pass_location anthropicsse sse/ 1) ;;
    *) die "no gateway config for $c" ;;
    esac
    conf_head "$p" "load_module $MODULE;
env BENCH_OPENAI_KEY;
env BENCH_ANTHROPIC_KEY;
${3:-}"
    upstream_block
    cat <<EOF
    $prov
    server {
        listen 127.0.0.1:${LISTEN_PORT:-$SUT_PORT};
        location /v1/ {
            ai_gateway;
$GOV_LOC
        }
$fb$locs
    }
}
EOF
}

# ------------------------------------------------------- process control
MOCK_PID=
SUT_PID=
SUT_PREFIX=

# start_nginx NAME CPU CONF_FUNCTION ARGS...: sets NGX_PID (the master);
# on failure returns 1 with the reason in $RES/nginx/NAME/reason
start_nginx() {
    local name=$1 cpu=$2 fn=$3; shift 3
    local p=$RES/nginx/$name
    mkdir -p "$p/tmp"
    "$fn" "$p" "$@" >"$p/nginx.conf" || return 1
    if ! "$NGINX" -t -q -p "$p" -c "$p/nginx.conf" -e "$p/error.log" >"$p/test.log" 2>&1; then
        grep -E '\[(emerg|alert|crit)\]' "$p/test.log" | head -2 \
            | sed "s#$p/##g" >"$p/reason"
        [ -s "$p/reason" ] || head -3 "$p/test.log" >"$p/reason"
        return 1
    fi
    pin "$cpu" "$NGINX" -p "$p" -c "$p/nginx.conf" -e "$p/error.log" \
        >"$p/start.log" 2>&1 9>&- || { head -5 "$p/start.log" >"$p/reason"; return 1; }
    local i
    for i in $(seq 100); do [ -s "$p/nginx.pid" ] && break; sleep 0.05; done
    NGX_PID=$(cat "$p/nginx.pid" 2>/dev/null)
    [ -n "$NGX_PID" ] || { echo "no pid file" >"$p/reason"; return 1; }
    PIDS+=("$NGX_PID:nginx-$name")
    if ! wait_port "$([ "$name" = mock ] && echo "$MOCK_PORT" || echo "$SUT_PORT")" 10; then
        echo "did not listen" >"$p/reason"
        return 1
    fi
    return 0
}

stop_pid() { # stop_pid PID [SIGNAL]: graceful stop, then hard
    local pid=$1 sig=${2:-QUIT} i
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    forget_pid "$pid"
}

workers_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' | tr '\n' ' '; }

cpu_ticks() { # cpu_ticks PID...: utime+stime of these processes, clock ticks
    local t=0 pid f
    for pid in "$@"; do
        f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        f=${f##*) }
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}

start_mock() {
    if [ "$MOCK_KIND" = perl ]; then
        local pl=$ROOT/t/lib/mock_provider.pl
        [ -f "$pl" ] || die "BENCH_MOCK=perl but $pl is not there"
        mkdir -p "$RES/mock"
        "${NICE_PFX[@]}" taskset -c "$MCPU" perl "$pl" --port "$MOCK_PORT" \
            --record "$RES/mock/requests.jsonl" >"$RES/mock/mock.log" 2>&1 9>&- &
        MOCK_PID=$!
        PIDS+=("$MOCK_PID:mock-perl")
        wait_port "$MOCK_PORT" 10 "$MOCK_PID" || die "t/lib/mock_provider.pl did not listen (see $RES/mock/mock.log)"
        log "provider: t/lib/mock_provider.pl on 127.0.0.1:$MOCK_PORT"
    else
        start_nginx mock "$MCPU" mock_conf || die "static mock: $(cat "$RES/nginx/mock/reason")"
        MOCK_PID=$NGX_PID
        log "provider: static nginx mock on 127.0.0.1:$MOCK_PORT (cpu $MCPU)"
    fi
}
mock_busy_pids() {
    if [ "$MOCK_KIND" = perl ]; then echo "$MOCK_PID"; else workers_of "$MOCK_PID"; fi
}

REDIS_PID=
start_redis() { # once, for gw-governed-lease; REASON on failure
    [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null && return 0
    [ -x "$REDIS" ] || { REASON="redis-server missing ($REDIS)"; return 1; }
    mkdir -p "$RES/redis"
    "${NICE_PFX[@]}" taskset -c "$MCPU" "$REDIS" --port "$REDIS_PORT" \
        --bind 127.0.0.1 --save '' --appendonly no --dir "$RES/redis" \
        --daemonize no >"$RES/redis/redis.log" 2>&1 9>&- &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID:redis")
    wait_port "$REDIS_PORT" 10 "$REDIS_PID" \
        || { REASON="redis-server did not listen (see $RES/redis/redis.log)"; return 1; }
}

PK_DIR=$BENCH/node_modules/@portkey-ai/gateway
portkey_install() { # the versions bench/package.json and package-lock.json pin
    local stamp=$BENCH/node_modules/.package-lock.json
    if [ -f "$PK_DIR/build/start-server.js" ] && [ -f "$stamp" ] \
            && [ ! "$BENCH/package.json" -nt "$stamp" ]; then
        return 0
    fi
    command -v npm >/dev/null || { echo "npm missing"; return 1; }
    log "installing @portkey-ai/gateway (bench/package.json) into bench/node_modules"
    local how=install
    [ -f "$BENCH/package-lock.json" ] && how=ci
    (cd "$BENCH" && timeout 300 npm "$how" --no-audit --no-fund --ignore-scripts \
        >"$RES/npm-install.log" 2>&1) || { echo "npm $how failed (see $RES/npm-install.log)"; return 1; }
    [ -f "$PK_DIR/build/start-server.js" ] || { echo "start-server.js missing after npm $how"; return 1; }
}
PK_PID=
start_portkey() { # REASON on failure
    local r
    r=$(portkey_install) || { REASON=$r; return 1; }
    command -v node >/dev/null || { REASON="node missing"; return 1; }
    NODE_ENV=production "${NICE_PFX[@]}" taskset -c "$SCPU" node "$BENCH/portkey.mjs" "$PK_PORT" \
        >"$RES/portkey.log" 2>&1 9>&- &
    PK_PID=$!
    PIDS+=("$PK_PID:portkey")
    wait_port "$PK_PORT" 30 "$PK_PID" || { REASON="Portkey did not listen (see $RES/portkey.log)"; return 1; }
}

# ---------------------------------------------------------------- running
# per-case target: host port, extra headers
target_port() {
    case "$(case_field "$1" 2)" in
    direct) echo "$MOCK_PORT" ;; portkey) echo "$PK_PORT" ;; *) echo "$SUT_PORT" ;;
    esac
}
HDRS=()
set_headers() {
    HDRS=("Authorization: Bearer sk-bench-client")
    if [ "$(case_field "$1" 2)" = portkey ]; then
        local pfx=/v1
        [ "$(case_field "$1" 5)" = 1 ] && [ "$MOCK_KIND" != perl ] && pfx=/sse/v1
        HDRS+=("x-portkey-provider: openai" "x-portkey-custom-host: http://127.0.0.1:$MOCK_PORT$pfx")
    fi
}

server_pids() { # the processes whose CPU time is the server's
    case "$(case_field "$1" 2)" in
    direct) mock_busy_pids ;;
    portkey) echo "$PK_PID" ;;
    *) workers_of "$SUT_PID" ;;
    esac
}

json_str() { perl -MJSON::PP -e 'print JSON::PP->new->allow_nonref->encode($ARGV[0])' -- "$1"; }

set_status() { # set_status CASE ok|failed|skipped REASON
    local d=$RES/cases/$1
    printf '{"status":"%s","reason":%s}\n' "$2" "$(json_str "$3")" >"$d/status.json"
    [ "$2" = ok ] || log "$1: $2: $3"
}

# busy jiffies of a /proc/stat line: core_busy all|N [task|irq]
#   task: user nice system (what processes run; comparable with their
#   utime+stime); irq: irq softirq (loopback TCP is largely softirq work,
#   which the kernel does not charge to any process)
core_busy() {
    local key=cpu
    [ "$1" = all ] || key=cpu$1
    awk -v k="$key" -v w="${2:-all}" '$1 == k {
        t = $2 + $3 + $4; i = $7 + $8
        print (w == "task" ? t : w == "irq" ? i : t + i); exit }' /proc/stat
}
CHILD_TICKS=0
children_ticks() { # CHILD_TICKS = user+sys CPU of the finished children of this shell
    local a b                # (no subshell here: `times` must run in this shell)
    times >"$RES/.times"
    { read -r _; read -r a b; } <"$RES/.times"
    CHILD_TICKS=$(perl -e 'my $t = 0; for (@ARGV[0, 1]) { /(\d+)m([\d.]+)s/ and $t += $1 * 60 + $2 } printf "%d\n", $t * $ARGV[2]' \
        "$a" "$b" "$(getconf CLK_TCK)")
}

# CPU accounting around one measured run: meter_start CASE, then
# meter_stop sets M_JSON to the JSON fields (not in a $(...) subshell:
# `times` must see this shell's children). Ticks of the server under test, the
# mock, the load generator (children of this shell: wrk or client.pl, with
# timeout and taskset), process time of all cores (minus those three it is
# what other jobs did: a disturbed run), irq+softirq time of all cores, and
# the busy time of the server's and of the client's core.
meter_start() {
    M_PIDS=$(server_pids "$1"); M_MPIDS=$(mock_busy_pids)
    children_ticks; M_W0=$CHILD_TICKS
    M_A0=$(core_busy all task); M_Q0=$(core_busy all irq)
    M_S0=$(core_busy "$SCPU"); M_K0=$(core_busy "$CCPU")
    M_B0=$(cpu_ticks $M_PIDS); M_M0=$(cpu_ticks $M_MPIDS); M_T0=$(date +%s%N)
}
meter_stop() {
    local t1 b1 m1 a1 q1 s1 k1
    t1=$(date +%s%N); b1=$(cpu_ticks $M_PIDS); m1=$(cpu_ticks $M_MPIDS)
    a1=$(core_busy all task); q1=$(core_busy all irq)
    s1=$(core_busy "$SCPU"); k1=$(core_busy "$CCPU")
    children_ticks
    M_JSON=$(printf '"wall_ns":%d,"clk_tck":%d,"server_cpu_ticks":%d,"mock_cpu_ticks":%d,"client_cpu_ticks":%d,"all_task_ticks":%d,"all_irq_ticks":%d,"server_core_busy_ticks":%d,"client_core_busy_ticks":%d' \
        $((t1 - M_T0)) "$(getconf CLK_TCK)" $((b1 - M_B0)) $((m1 - M_M0)) $((CHILD_TICKS - M_W0)) \
        $((a1 - M_A0)) $((q1 - M_Q0)) $((s1 - M_S0)) $((k1 - M_K0)))
}

run_wrk() { # run_wrk CASE OUTNAME CONNS SECONDS DELAY_MS
    local c=$1 out=$RES/cases/$1/$2.json port path j
    port=$(target_port "$c"); path=$(case_field "$c" 3)
    meter_start "$c"
    tpin $(($4 + 30)) "$CCPU" wrk -t1 -c"$3" -d"$4"s --timeout 5s \
        -s "$BENCH/wrk/post.lua" "http://127.0.0.1:$port$path" \
        -- "$RES/req/$c.json" "$5" "${HDRS[@]}" >"$RES/cases/$c/$2.txt" 2>&1
    meter_stop
    j=$(sed -n 's/^WRKJSON //p' "$RES/cases/$c/$2.txt")
    [ -n "$j" ] || { log "$c: wrk gave no result: $(tail -2 "$RES/cases/$c/$2.txt")"; return 1; }
    printf '{"wrk":%s,"connections":%d,"delay_ms":%d,%s}\n' "$j" "$3" "$5" "$M_JSON" >"$out"
}

start_sut() { # start_sut CASE: the server the case talks to; REASON on failure
    local c=$1 k
    k=$(case_field "$c" 2)
    SUT_PID=
    REASON=
    case "$k" in
    direct) return 0 ;;
    plain)
        PLAIN_CACHE=0
        [ "$c" = plain-cache ] && PLAIN_CACHE=1
        start_nginx "$c" "$SCPU" plain_conf || { REASON=$(cat "$RES/nginx/$c/reason"); return 1; }
        SUT_PID=$NGX_PID ;;
    gateway)
        [ -f "$MODULE" ] || { REASON="module not built ($MODULE missing)"; return 1; }
        if [ "$c" = gw-governed-lease ]; then start_redis || return 1; fi
        start_nginx "$c" "$SCPU" gateway_conf "$c" || {
            REASON="gateway config rejected: $(tr '\n' ' ' <"$RES/nginx/$c/reason")"; return 1; }
        SUT_PID=$NGX_PID ;;
    portkey)
        if [ -z "$PK_PID" ] || ! kill -0 "$PK_PID" 2>/dev/null; then
            start_portkey || return 1
        fi ;;
    esac
}
stop_sut() {
    [ -n "$SUT_PID" ] && stop_pid "$SUT_PID" QUIT
    SUT_PID=
}

governed_check() { # governed_check CASE PORT PATH; REASON on failure
    local code st
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 \
        "http://127.0.0.1:$2$3" -d @"$RES/req/$1.json")
    [ "$code" = 401 ] || { REASON="a request without a key got $code, not 401"; return 1; }
    st=$(curl -s -m 5 "http://127.0.0.1:$2/ai/status")
    grep -q '"key_name":"bench"' <<<"$st" \
        || { REASON="the ledger has no entry of the key bench"; return 1; }
    perl -MJSON::PP -e 'my $t = decode_json(join "", <STDIN>)->{metrics}{totals};
        exit !($t->{status_2xx} >= 1 && $t->{calls} >= 1)' <<<"$st" \
        || { REASON="the metrics do not count the answer"; return 1; }
    return 0
}

run_case() {
    local c=$1 d=$RES/cases/$1 k st ck port path
    mkdir -p "$d"
    k=$(case_field "$c" 2); st=$(case_field "$c" 5); ck=$(case_field "$c" 6)
    write_body "$RES/req/$c.json" "$(case_field "$c" 4)" "$st" "$c"
    set_headers "$c"
    port=$(target_port "$c"); path=$(case_field "$c" 3)
    printf '{"name":"%s","kind":"%s","path":"%s","model":"%s","stream":%s,"plain":"%s","direct":"%s","label":%s}\n' \
        "$c" "$k" "$path" "$(case_field "$c" 4)" "$([ "$st" = 1 ] && echo true || echo false)" \
        "$(case_field "$c" 7)" "$(case_field "$c" 8)" "$(json_str "$(case_field "$c" 9)")" >"$d/meta.json"

    if [ "$MOCK_KIND" = perl ] && { [ "$k" = direct ] || [ "$k" = plain ]; }; then
        set_status "$c" skipped "a baseline for the static mock (its native paths); not run with BENCH_MOCK=perl"
        return 0
    fi
    if ! start_sut "$c"; then
        set_status "$c" skipped "$REASON"
        return 0
    fi
    local hargs=() h
    for h in "${HDRS[@]}"; do hargs+=(--header "$h"); done
    # the fallback case is only what it claims if the first call failed
    local expect=()
    [ "$c" = gw-fallback ] && expect=(--expect x-ai-attempts=2 --expect x-ai-model=openai/gpt-4o)
    if ! tpin 30 "$CCPU" perl "$BENCH/client.pl" --port "$port" --path "$path" \
            --body "$RES/req/$c.json" "${hargs[@]}" "${expect[@]}" --check "$ck" >"$d/check.json" 2>&1; then
        set_status "$c" failed "correctness check: $(perl -MJSON::PP -ne 'print eval { JSON::PP->new->decode($_)->{reason} } // $_' "$d/check.json" | head -c 300)"
        stop_sut
        return 0
    fi
    # a governed case is only what it claims if governance acted: no key,
    # no answer; the ledger and the metrics have the key's request
    if [[ "$c" == gw-governed* ]] && ! governed_check "$c" "$port" "$path"; then
        set_status "$c" failed "governance check: $REASON"
        stop_sut
        return 0
    fi
    if [ "$MODE" = check ]; then
        set_status "$c" ok "check passed"
        log "$c: check ok"
        stop_sut
        return 0
    fi
    log "$c: warm-up ${WARM}s, throughput ${S}s at -c$CONNS (x$REPEAT)"
    run_wrk "$c" warmup "$CONNS" "$WARM" 0 || true
    local i ok=0
    for i in $(seq "$REPEAT"); do
        run_wrk "$c" "throughput.$i" "$CONNS" "$S" 0 && ok=1
    done
    if [ "$ok" = 0 ]; then
        set_status "$c" failed "wrk failed"; stop_sut; return 0
    fi
    local delay=$(( (LCONNS * 1000 + LRATE / 2) / LRATE ))
    [ "$delay" -ge 1 ] || delay=1
    log "$c: light load ${S}s, -c$LCONNS, random pauses of ${delay} ms on average (x$REPEAT)"
    for i in $(seq "$REPEAT"); do
        run_wrk "$c" "light.$i" "$LCONNS" "$S" "$delay" || true
    done
    log "$c: one client back to back, up to $SEQ_N requests or ${S}s"
    meter_start "$c"
    if tpin $((S + 60)) "$CCPU" perl "$BENCH/client.pl" --port "$port" --path "$path" \
            --body "$RES/req/$c.json" "${hargs[@]}" --warmup 100 --ttft "$SEQ_N" --max-seconds "$S" \
            >"$d/seq.out" 2>"$d/seq.err"; then
        meter_stop
        printf '{"client":%s,%s}\n' "$(cat "$d/seq.out")" "$M_JSON" >"$d/seq.json"
    else
        log "$c: sequential run failed: $(head -2 "$d/seq.err")"
    fi
    set_status "$c" ok "measured"
    stop_sut
}

# ---------------------------------------------------------------- callgrind
# Instructions per request: nginx in one process (master_process off) under
# callgrind and one keep-alive client. Run A sends W+N requests, run B
# W+2N; (Ir(B) - Ir(A)) / N is what one steady-state request costs, since
# start-up, configuration, warm-up, first-use costs and shutdown are the
# same in both runs. A and B run side by side (instruction counts do not
# depend on timing): A's server on the server core, B's on the other one.

# cg_start CASE NAME PORT CPU: nginx under callgrind; sets CG_VPID
cg_start() {
    local c=$1 name=$2 p=$RES/nginx/$2
    mkdir -p "$p/tmp"
    local extra="master_process off;
daemon off;"
    PLAIN_CACHE=0
    [ "$c" = plain-cache ] && PLAIN_CACHE=1
    if [ "$(case_field "$c" 2)" = plain ]; then LISTEN_PORT=$3 plain_conf "$p" "$extra" >"$p/nginx.conf"
    else LISTEN_PORT=$3 gateway_conf "$p" "$c" "$extra" >"$p/nginx.conf"; fi
    "${NICE_PFX[@]}" taskset -c "$4" valgrind --tool=callgrind --callgrind-out-file="$p/callgrind.out" \
        "$NGINX" -p "$p" -c "$p/nginx.conf" -e "$p/error.log" >"$p/valgrind.log" 2>&1 9>&- &
    CG_VPID=$!
    PIDS+=("$CG_VPID:valgrind-$name")
}

# cg_total NAME: callgrind's instruction total of a finished run
cg_total() {
    local f=$RES/nginx/$1/callgrind.out ir
    ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f" 2>/dev/null | head -1)
    [ -n "$ir" ] || ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$f" 2>/dev/null | head -1)
    echo "$ir"
}

cg_case() { # cg_case CASE: writes cases/CASE/callgrind.json, or REASON and returns 1
    local c=$1 path na nb a b va vb ca cb ok=1
    path=$(case_field "$c" 3)
    na=$((CG_WARM + CG_N)); nb=$((CG_WARM + 2 * CG_N))
    a=cg-$c-$na; b=cg-$c-$nb
    cg_start "$c" "$a" "$SUT_PORT" "$SCPU"; va=$CG_VPID
    cg_start "$c" "$b" "$CG_PORT2" "$CCPU"; vb=$CG_VPID
    REASON=
    wait_port "$SUT_PORT" 90 "$va" || REASON="nginx under valgrind did not listen: $(grep -m1 -E '\[(emerg|alert)\]' "$RES/nginx/$a/valgrind.log")"
    [ -z "$REASON" ] && { wait_port "$CG_PORT2" 90 "$vb" || REASON="nginx under valgrind did not listen: $(grep -m1 -E '\[(emerg|alert)\]' "$RES/nginx/$b/valgrind.log")"; }
    if [ -n "$REASON" ]; then
        stop_pid "$va" KILL; stop_pid "$vb" KILL; wait "$va" "$vb" 2>/dev/null
        return 1
    fi
    local hargs=() h
    for h in "${HDRS[@]}"; do hargs+=(--header "$h"); done
    tpin 900 "$CCPU" perl "$BENCH/client.pl" --port "$SUT_PORT" --path "$path" --body "$RES/req/$c.json" \
        "${hargs[@]}" --timeout 30 --count "$na" >"$RES/nginx/$a/client.json" 2>&1 &
    ca=$!
    tpin 900 "$SCPU" perl "$BENCH/client.pl" --port "$CG_PORT2" --path "$path" --body "$RES/req/$c.json" \
        "${hargs[@]}" --timeout 30 --count "$nb" >"$RES/nginx/$b/client.json" 2>&1 &
    cb=$!
    wait "$ca" || { ok=0; REASON="client failed: $(head -c 200 "$RES/nginx/$a/client.json")"; }
    wait "$cb" || { ok=0; REASON="client failed: $(head -c 200 "$RES/nginx/$b/client.json")"; }
    # SIGQUIT: nginx exits gracefully and callgrind writes its totals
    kill -QUIT "$va" "$vb" 2>/dev/null
    local i
    for i in $(seq 600); do
        kill -0 "$va" 2>/dev/null || kill -0 "$vb" 2>/dev/null || break
        sleep 0.1
    done
    stop_pid "$va" KILL; stop_pid "$vb" KILL
    wait "$va" "$vb" 2>/dev/null
    [ "$ok" = 1 ] || return 1
    local fa=$RES/nginx/$a/callgrind.out
    a=$(cg_total "$a"); b=$(cg_total "$b")
    rm -f "$fa"    # run B's profile is kept (callgrind_annotate it)
    [ -n "$a" ] && [ -n "$b" ] || { REASON="no totals in callgrind output"; return 1; }
    printf '{"requests_a":%d,"ir_a":%s,"requests_b":%d,"ir_b":%s,"n":%d}\n' \
        "$na" "$a" "$nb" "$b" "$CG_N" >"$RES/cases/$c/callgrind.json"
    callgrind_annotate "$RES/nginx/cg-$c-$nb/callgrind.out" 2>/dev/null \
        | head -60 >"$RES/cases/$c/callgrind-top.txt"
    log "callgrind $c: $(( (b - a) / CG_N )) instructions per request"
}

run_callgrind() {
    command -v valgrind >/dev/null || { log "valgrind missing: no instruction counts (apt-get install valgrind)"; return 0; }
    local c st
    for c in ${CG_CASES//,/ }; do
        selected "$c" || continue
        st=$(perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit; print JSON::PP->new->decode(<$f>)->{status}' \
            "$RES/cases/$c/status.json" 2>/dev/null)
        [ "$st" = ok ] || { log "callgrind $c: skipped (case ${st:-not run})"; continue; }
        set_headers "$c"
        log "callgrind $c: $((CG_WARM + CG_N)) and $((CG_WARM + 2 * CG_N)) requests"
        cg_case "$c" || log "callgrind $c failed: $REASON"
    done
}

machine_json() {
    local cpu mod_sha='' commit
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    [ -f "$MODULE" ] && mod_sha=$(sha256sum "$MODULE" | cut -c1-12)
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)
    perl -MJSON::PP -e 'print JSON::PP->new->canonical->encode({@ARGV}), "\n"' -- \
        date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" cpu "$cpu" cpus "$NCPU" \
        kernel "$(uname -r)" os "$(. /etc/os-release; echo "$PRETTY_NAME")" \
        nginx "$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')" \
        node "$(node --version 2>/dev/null)" \
        portkey "$(perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit; print JSON::PP->new->decode(<$f>)->{version}' "$PK_DIR/package.json" 2>/dev/null)" \
        wrk "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" \
        valgrind "$(valgrind --version 2>/dev/null)" \
        commit "$commit" module_sha256 "$mod_sha" \
        seconds "$S" warmup_seconds "$WARM" connections "$CONNS" \
        light_connections "$LCONNS" light_rate "$LRATE" repeat "$REPEAT" seq_requests "$SEQ_N" \
        callgrind_requests "$CG_N" callgrind_warmup "$CG_WARM" \
        server_cpu "$SCPU" client_cpu "$CCPU" mock_cpu "$MCPU" nice "$NICE" mock "$MOCK_KIND" mode "$MODE" \
        >"$RES/machine.json"
}

# ---------------------------------------------------------------- setup
setup() {
    local t c p
    for t in wrk taskset perl curl; do
        command -v "$t" >/dev/null || die "$t is missing (apt-get install wrk util-linux perl curl)"
    done
    [ -x "$NGINX" ] || die "nginx not found at $NGINX"
    NCPU=$(nproc)
    for c in "$SCPU" "$CCPU" "$MCPU"; do
        [ "$c" -lt "$NCPU" ] || die "cpu $c does not exist (nproc=$NCPU); set BENCH_*_CPU"
    done
    for p in "$MOCK_PORT" "$SUT_PORT" "$PK_PORT" "$CG_PORT2"; do
        port_free "$p" || die "port $p is in use; set BENCH_PORT_BASE"
    done
    # keep the last BENCH_KEEP_RESULTS runs (callgrind profiles are large)
    local old
    for old in $(ls -d "$BENCH"/results/[0-9]*-[0-9]* 2>/dev/null | sort | head -n -"$((KEEP - 1))"); do
        rm -rf "$old"
    done
    STAMP=$(date +%Y%m%d-%H%M%S)
    RES=$BENCH/results/$STAMP
    mkdir -p "$RES/cases" "$RES/req" "$RES/nginx"
    ln -sfn "$STAMP" "$BENCH/results/latest"
    log "results in bench/results/$STAMP ($MODE)"
    trap cleanup EXIT
    trap 'log interrupted; exit 130' INT TERM
}

# ---------------------------------------------------------------- main
# (one function, called on the last line: bash has read the whole file
# before anything runs, so editing the script during a run is harmless)
main() {
    local c n
    setup
    # Every case of the run loads the same copy of the module, even if
    # build/ is rebuilt meanwhile; the copy stays with the results.
    if [ -f "$MODULE" ]; then
        cp "$MODULE" "$RES/ngx_ai_gateway_module.so"
        MODULE=$RES/ngx_ai_gateway_module.so
    else
        log "module not built ($MODULE): the gateway cases will be skipped"
    fi
    machine_json
    start_mock
    ORDER=()
    for c in "${CASES[@]}"; do
        n=${c%%|*}
        selected "$n" || continue
        ORDER+=("$n")
        run_case "$n"
    done
    printf '%s\n' "${ORDER[@]}" >"$RES/order.txt"
    [ -n "$PK_PID" ] && { stop_pid "$PK_PID" TERM; PK_PID=; }

    if [ "$MODE" = run ] && [ "$CG" = 1 ]; then
        run_callgrind
    fi

    stop_pid "$MOCK_PID" QUIT
    perl "$BENCH/report.pl" "$RES" --docs "$([ "$MODE" = run ] && [ "$UPDATE_DOCS" = 1 ] && echo "$ROOT/docs/benchmarks.md")"
    if [ "$MODE" = run ] && [ "$UPDATE_DOCS" = 1 ]; then
        perl "$BENCH/chart.pl" "$RES/results.json" "$ROOT/docs/benchmarks.svg" \
            && log "wrote docs/benchmarks.svg"
    fi
    log "done: bench/results/$STAMP/results.md"
}

main "$@"; exit $?
