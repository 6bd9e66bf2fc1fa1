#!/usr/bin/env bash
# One entry point for ngx_ai_gateway_module.
#
#   ./build.sh            install what is missing, build build/ngx_ai_gateway_module.so
#   ./build.sh test       build, then run the whole test suite (prove t/)
#   ./build.sh demo       build, then run examples/demo.conf in the foreground on
#                         127.0.0.1:8080 (DEMO_PORT, DEMO_MOCK_PORT, DEMO_PREFIX)
#   ./build.sh test-asan  the same suite with the module under ASan + UBSan
#   ./build.sh unit       build and run the C unit tests of the pure parsers
#   ./build.sh fuzz [S]   run every fuzz target for S seconds (default 60)
#   ./build.sh bench      the gateway side by side with proxy_pass and Portkey
#   ./build.sh key NAME [ATTR=VALUE...]
#                         a new random client key, printed once, and the
#                         line of it for an ai_keys file (docs/keys.md)
#   ./build.sh clean      remove build/
#
# The module is built against the system nginx (Debian nginx-core +
# nginx-dev, /usr/share/nginx/src) with the same configure flags, so the
# .so loads into /usr/sbin/nginx.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD="$ROOT/build"
NGX_SRC=/usr/share/nginx/src
MODULE=ngx_ai_gateway_module
JOBS=$(nproc 2>/dev/null || echo 2)

# Debian packages the build, the tests and the demo need.
PACKAGES=(nginx-core nginx-dev libcjson-dev libpcre2-dev libssl-dev
          zlib1g-dev libhiredis-dev gcc make perl nodejs npm curl wrk
          redis-server prometheus chromium jq)

log() { printf '==> %s\n' "$*" >&2; }

install_packages() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
                | grep -q "install ok installed"; then
            # nodejs may come from another source that also provides npm
            if [ "$p" = npm ] && command -v npm >/dev/null; then
                continue
            fi
            if [ "$p" = nodejs ] && command -v node >/dev/null; then
                continue
            fi
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    local sudo=
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    if [ ! -f "$BUILD/.apt-updated" ]; then
        $sudo apt-get update -qq
        mkdir -p "$BUILD" && touch "$BUILD/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

# configure_tree DIR [extra configure args...]: a private copy of nginx's
# source tree configured with Debian's flags plus this module; configure is
# re-run only when `config` (the list of sources) or the flags change.
configure_tree() {
    local dir=$1; shift
    local stamp="$dir/.ai-configured"
    local want
    want="$(cat "$ROOT/config") $*"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
            && [ -f "$dir/objs/Makefile" ]; then
        return 0
    fi
    log "configuring nginx source tree in ${dir#$ROOT/}"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -a "$NGX_SRC/." "$dir/"
    # shellcheck disable=SC1091
    . "$NGX_SRC/conf_flags"
    (cd "$dir" && ./configure "${NGX_CONF_FLAGS[@]}" "$@" \
        --add-dynamic-module="$ROOT" >"$dir/configure.log" 2>&1) || {
        tail -30 "$dir/configure.log" >&2
        exit 1
    }
    printf '%s' "$want" >"$stamp"
}

# One build at a time: two configures in one tree corrupt it.
build_lock() {
    mkdir -p "$BUILD"
    exec 9>"$BUILD/.lock"
    flock 9
}

# The compiler and linker options Debian built /usr/sbin/nginx with (-O2,
# stack protector, FORTIFY_SOURCE, full RELRO), read from `nginx -V`; the
# module is built as the binary it loads into.
nginx_build_opt() {
    nginx -V 2>&1 | sed -n "s/.*--with-$1='\([^']*\)'.*/\1/p" \
        | sed 's/-ffile-prefix-map=[^ ]*//g'
}

# Headers generated from the tree: the Lua scripts of sync= (sync/*.lua),
# rewritten only when a script changed.  (The dashboard's is made by hand:
# dashboard/embed.pl.)
generate() {
    perl "$ROOT/$MODULE/sync/embed.pl"
}

build_module() {
    local cc_opt ld_opt
    install_packages "${PACKAGES[@]}"
    build_lock
    generate
    cc_opt=$(nginx_build_opt cc-opt)
    ld_opt=$(nginx_build_opt ld-opt)
    configure_tree "$BUILD/nginx" "--with-cc-opt=${cc_opt:--g -O2}" \
        "--with-ld-opt=${ld_opt:-}"
    make -C "$BUILD/nginx" -f objs/Makefile -j"$JOBS" modules >"$BUILD/make.log" 2>&1 || {
        grep -E 'error|warning' "$BUILD/make.log" | head -40 >&2
        exit 1
    }
    if ! cmp -s "$BUILD/nginx/objs/$MODULE.so" "$BUILD/$MODULE.so"; then
        # a new inode: a running nginx has the old file mapped
        cp "$BUILD/nginx/objs/$MODULE.so" "$BUILD/$MODULE.so.tmp"
        mv -f "$BUILD/$MODULE.so.tmp" "$BUILD/$MODULE.so"
    fi
    log "built build/$MODULE.so"
}

# The module with AddressSanitizer and UndefinedBehaviorSanitizer, in its
# own tree, for ./build.sh test-asan.  The system nginx binary is not
# instrumented: the harness preloads libasan into it.
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

build_asan_module() {
    install_packages "${PACKAGES[@]}"
    build_lock
    generate
    configure_tree "$BUILD/nginx-asan" "--with-cc-opt=-g -O1 $SAN_FLAGS" \
        "--with-ld-opt=$SAN_FLAGS"
    make -C "$BUILD/nginx-asan" -f objs/Makefile -j"$JOBS" modules \
        >"$BUILD/make-asan.log" 2>&1 || {
        grep -E 'error|warning' "$BUILD/make-asan.log" | head -40 >&2
        exit 1
    }
    mkdir -p "$BUILD/asan"
    cp "$BUILD/nginx-asan/objs/$MODULE.so" "$BUILD/asan/$MODULE.so.tmp"
    mv -f "$BUILD/asan/$MODULE.so.tmp" "$BUILD/asan/$MODULE.so"
    log "built build/asan/$MODULE.so"
}

run_tests_asan() {
    build_asan_module
    test_deps
    make -s -C "$ROOT/t/unit" NGX="$BUILD/nginx" OUT="$BUILD/unit-asan" \
        SRC="$ROOT/$MODULE" SAN="$SAN_FLAGS"
    ASAN_OPTIONS=detect_leaks=1 "$BUILD/unit-asan/run_unit"
    cd "$ROOT"
    AI_GW_MODULE="$BUILD/asan/$MODULE.so" \
    AI_GW_SANITIZE="$(gcc -print-file-name=libasan.so)" \
        prove -j"$JOBS" -r "${@:-t/}"
}

# The C unit tests of the pure code link the module's pure files with the
# few nginx core files they use (pools, strings), from the configured tree.
build_unit() {
    build_module
    make -s -C "$ROOT/t/unit" NGX="$BUILD/nginx" OUT="$BUILD/unit" \
        SRC="$ROOT/$MODULE"
}

test_deps() {
    # Real-client tests use the official SDKs from npm, installed into
    # t/node_modules (ignored by git) at the versions t/package.json pins.
    if [ ! -f "$ROOT/t/node_modules/.package-lock.json" ] \
            || [ "$ROOT/t/package.json" -nt "$ROOT/t/node_modules/.package-lock.json" ]; then
        log "installing test clients from npm into t/node_modules"
        (cd "$ROOT/t" && npm install --no-audit --no-fund --silent \
            >/dev/null 2>&1) || log "npm install failed: SDK tests will fail"
    fi
}

run_tests() {
    build_unit
    test_deps
    "$BUILD/unit/run_unit"
    # every fuzz target: its regressions and seeds, then a short run
    "$ROOT/fuzz/run.sh" smoke "${AI_FUZZ_SMOKE_SECONDS:-10}"
    cd "$ROOT"
    AI_GW_MODULE="$BUILD/$MODULE.so" prove -j"$JOBS" -r "${@:-t/}"
}

# demo_config PORT MOCK_PORT: examples/demo.conf with its @...@ values
# filled in on stdout (a provider whose *_API_KEY is set: the real API,
# else the mock on MOCK_PORT); t/91-demo-tour.t uses it too
demo_config() {
    local port=$1 mock_port=$2 p var up
    local -A real=([OPENAI]=https://api.openai.com
                   [ANTHROPIC]=https://api.anthropic.com
                   [GEMINI]=https://generativelanguage.googleapis.com)
    local sed_args=(-e "s#@MODULE@#$BUILD/$MODULE.so#" -e "s#@PORT@#$port#")
    for p in OPENAI ANTHROPIC GEMINI; do
        var="${p}_API_KEY"
        if [ -n "${!var:-}" ] && [ "${!var}" != demo-key-for-the-mock ]; then
            up=${real[$p]}
        else
            up="http://127.0.0.1:$mock_port"
        fi
        sed_args+=(-e "s#@${p}_UPSTREAM@#$up#")
    done
    sed "${sed_args[@]}" "$ROOT/examples/demo.conf"
}

# DEMO_PORT (8080), DEMO_MOCK_PORT (18081), DEMO_PREFIX (build/demo)
run_demo() {
    build_module
    local prefix="${DEMO_PREFIX:-$BUILD/demo}" port="${DEMO_PORT:-8080}"
    local mock_port="${DEMO_MOCK_PORT:-18081}" mock_pid= p var
    mkdir -p "$prefix/logs" "$prefix/conf" "$prefix/temp"
    demo_config "$port" "$mock_port" >"$prefix/conf/nginx.conf"
    for p in OPENAI ANTHROPIC GEMINI; do
        var="${p}_API_KEY"
        if [ -n "${!var:-}" ]; then
            log "$var is set: ${p,,} requests go to the real API"
            continue
        fi
        export "$var=demo-key-for-the-mock"
        log "$var is not set: ${p,,} requests go to the bundled mock"
        if [ -z "$mock_pid" ]; then
            perl "$ROOT/t/lib/mock_provider.pl" --port "$mock_port" \
                --record "$prefix/logs/mock.jsonl" --watch-pid $$ >/dev/null &
            mock_pid=$!
            # the pid now: mock_pid is gone when the trap runs
            trap "kill $mock_pid 2>/dev/null" EXIT
        fi
    done
    log "nginx on http://127.0.0.1:$port (Ctrl-C stops it)"
    log "  dashboard:  http://127.0.0.1:$port/ai/status?format=html"
    log "  status:     http://127.0.0.1:$port/ai/status"
    log "  prometheus: http://127.0.0.1:$port/ai/status?format=prometheus"
    log "  the tour:   README.md, \"A five-minute tour\"; try:"
    log "  curl -s localhost:$port/v1/chat/completions -d '{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'"
    /usr/sbin/nginx -p "$prefix" -c "$prefix/conf/nginx.conf" \
        -e "$prefix/logs/error.log" -g 'daemon off;'
}

# new_key NAME [ATTR=VALUE...]: a random key (32 bytes from the kernel,
# base64url) on stderr, once; its ai_keys line, with only its SHA-256, on
# stdout
new_key() {
    local name=${1:-} key hash a
    if ! [[ "$name" =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
        echo "usage: $0 key NAME [team=T] [models=a/b,c/*] [rpm=N] [tpm=N]" \
             "[budget=USD[/day|/month]] [expires=RFC3339]" >&2
        exit 2
    fi
    shift
    for a in "$@"; do
        case "$a" in
            team=*|models=*|rpm=*|tpm=*|budget=*|expires=*) ;;
            *) echo "key: unknown attribute \"$a\"" >&2; exit 2 ;;
        esac
    done
    key="sk-gw-$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
    printf 'key (shown once, give it to the client): %s\n' "$key" >&2
    printf 'sha256:%s name=%s%s\n' "$hash" "$name" "${*:+ $*}"
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case "$cmd" in
    build) build_module ;;
    unit)  build_unit; "$BUILD/unit/run_unit" ;;
    test)  run_tests "$@" ;;
    test-asan) run_tests_asan "$@" ;;
    fuzz)  build_module; "$ROOT/fuzz/run.sh" "$@" ;;
    bench) build_module; exec "$ROOT/bench/run.sh" "$@" ;;
    demo)  run_demo ;;
    demo-config) demo_config "$@" ;;
    key)   new_key "$@" ;;
    clean) rm -rf "$BUILD" ;;
    *) echo "usage: $0 [build|test|test-asan|unit|fuzz [SECONDS]|bench|demo|key NAME|clean]" >&2
       exit 2 ;;
esac
