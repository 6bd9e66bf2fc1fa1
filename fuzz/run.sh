#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (docs/fuzzing.md).
#
#   fuzz/run.sh [SECONDS] [TARGET...]        fuzz each target SECONDS
#                                            (default 60), seeds from
#                                            fuzz/corpus/<target>/
#   fuzz/run.sh regress [TARGET...]          replay fuzz/regressions/<target>/
#                                            and the seeds once each
#   fuzz/run.sh smoke [SECONDS] [TARGET...]  regress, then fuzz each target
#                                            SECONDS (default 10)
#   fuzz/run.sh coverage [TARGET...]         line coverage of the pure code
#                                            by each target's corpus
#   fuzz/run.sh build                        only build the targets
#   fuzz/run.sh list                         print the target names
#
# FUZZ_JOBS targets run at once (default: the number of CPUs).  New
# corpus entries go to fuzz/out/corpus/<target>/, crashes to
# fuzz/out/artifacts/<target>/, logs to fuzz/out/logs/ (fuzz/out/ is not
# in git).  Exit status 1 when any target crashed, leaked, timed out or
# failed a check.

set -euo pipefail

FUZZ=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$FUZZ")
OUT="$FUZZ/out"
BIN="$OUT/bin"
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# per input: a parser stuck this long is a bug; the memory bound is
# far above what any input of max_len needs
TIMEOUT=10
RSS_MB=2048
MAX_LEN=16384

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

log() { printf '==> %s\n' "$*" >&2; }

need_tools() {
    local rt
    rt=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null \
         || true)
    if command -v clang >/dev/null && [ -n "$rt" ] && [ -f "$rt" ]; then
        return 0
    fi
    log "installing clang and libclang-rt-14-dev (libFuzzer)"
    local sudo=
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends clang libclang-rt-14-dev >/dev/null
}

build() {
    need_tools
    # the pure code includes nginx headers from the configured tree
    if [ ! -f "$ROOT/build/nginx/objs/ngx_auto_config.h" ]; then
        "$ROOT/build.sh" build
    fi
    make -s -C "$FUZZ" NGX="$ROOT/build/nginx" \
        SRC="$ROOT/ngx_ai_gateway_module" OUT="$BIN" -j"$JOBS" \
        >"$OUT/build.log" 2>&1 || {
        cat "$OUT/build.log" >&2
        exit 1
    }
}

all_targets() {
    make -s -C "$FUZZ" list
}

# regress TARGET: every regression input and seed, run once
regress_one() {
    local t=$1 files=()
    shopt -s nullglob
    files=("$FUZZ/regressions/$t"/* "$FUZZ/corpus/$t"/*)
    shopt -u nullglob
    [ ${#files[@]} -eq 0 ] && return 0
    if "$BIN/$t" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
            "${files[@]}" >"$OUT/logs/$t.regress.log" 2>&1; then
        printf '%-26s %4d inputs  ok\n' "$t" ${#files[@]}
    else
        printf '%-26s %4d inputs  FAILED (fuzz/out/logs/%s.regress.log)\n' \
            "$t" ${#files[@]} "$t"
        grep -aE 'ERROR|fuzz check failed|runtime error|Running:' \
            "$OUT/logs/$t.regress.log" | tail -5 >&2
        return 1
    fi
}

# fuzz TARGET SECONDS
fuzz_one() {
    local t=$1 secs=$2 dict=() rc=0 stats
    mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
    [ -f "$FUZZ/dict/$t.dict" ] && dict=(-dict="$FUZZ/dict/$t.dict")
    "$BIN/$t" -max_total_time="$secs" -timeout="$TIMEOUT" \
        -rss_limit_mb="$RSS_MB" -max_len="$MAX_LEN" "${dict[@]}" \
        -artifact_prefix="$OUT/artifacts/$t/" -print_final_stats=1 \
        "$OUT/corpus/$t" "$FUZZ/corpus/$t" >"$OUT/logs/$t.log" 2>&1 \
        || rc=$?
    stats=$(awk '
        /cov: [0-9]+ ft: [0-9]+/ {
            for (i = 1; i <= NF; i++) {
                if ($i == "cov:") cov = $(i + 1)
                if ($i == "ft:") ft = $(i + 1)
                if ($i == "corp:") corp = $(i + 1)
            }
        }
        /stat::number_of_executed_units/ { runs = $2 }
        /stat::average_exec_per_sec/ { eps = $2 }
        END { printf "%10s runs %7s exec/s  cov %5s  ft %6s  corp %s",
                     runs, eps, cov, ft, corp }' "$OUT/logs/$t.log")
    if [ $rc -eq 0 ]; then
        printf '%-26s %s  ok\n' "$t" "$stats"
    else
        printf '%-26s %s  FAILED (fuzz/out/logs/%s.log)\n' "$t" "$stats" "$t"
        grep -aE 'ERROR|fuzz check failed|runtime error|Test unit written' \
            "$OUT/logs/$t.log" | tail -5 >&2
        return 1
    fi
}

# the pure files the targets link (fuzz/Makefile's PURE)
pure_files() {
    make -s -C "$FUZZ" SRC="$ROOT/ngx_ai_gateway_module" pure
}

# coverage TARGET: what its corpus (seeds, regressions, what fuzzing
# found) reaches in the pure files, from an uninstrumented build
coverage_one() {
    local t=$1 dirs=() d
    for d in "$OUT/corpus/$t" "$FUZZ/corpus/$t" "$FUZZ/regressions/$t"; do
        [ -d "$d" ] && dirs+=("$d")
    done
    rm -f "$OUT/cov/$t".prof*
    LLVM_PROFILE_FILE="$OUT/cov/$t.profraw" "$OUT/cov/$t" -runs=0 \
        "${dirs[@]}" >"$OUT/logs/$t.cov.log" 2>&1 || {
        printf '%-26s FAILED (fuzz/out/logs/%s.cov.log)\n' "$t" "$t"
        return 1
    }
    llvm-profdata merge -sparse -o "$OUT/cov/$t.profdata" \
        "$OUT/cov/$t.profraw"
    llvm-cov report "$OUT/cov/$t" -instr-profile="$OUT/cov/$t.profdata" \
        $(pure_files) >"$OUT/cov/$t.txt" 2>&1
    cov_summary "$t" "$OUT/cov/$t.txt"
}

# cov_summary NAME REPORT: line coverage of the pure files a report shows
cov_summary() {
    awk -v t="$1" '
        /ngx_ai_gateway_[a-z_]+\.c / {
            n = split($1, p, "/"); f = p[n]; sub(/^ngx_ai_gateway_/, "", f)
            if ($10 != "0.00%") {
                files = files sprintf(" %s %s", f, $10)
            }
        }
        /^TOTAL/ { total = $10 }
        END { printf "%-26s lines %7s  (%s )\n", t, total, files }
    ' "$2"
}

# the union of every target's corpus, over all the pure files
coverage_all() {
    local objs=() t
    for t in "$@"; do
        [ -f "$OUT/cov/$t.profraw" ] && objs+=(-object "$OUT/cov/$t")
    done
    [ ${#objs[@]} -eq 0 ] && return 0
    llvm-profdata merge -sparse -o "$OUT/cov/all.profdata" \
        "$OUT"/cov/*.profraw
    llvm-cov report "${objs[@]:1}" -instr-profile="$OUT/cov/all.profdata" \
        $(pure_files) >"$OUT/cov/all.txt" 2>&1
    cov_summary "all targets" "$OUT/cov/all.txt"
}

# run_all FUNCTION ARGS... -- TARGET...: FUNCTION per target, JOBS at once
run_all() {
    local fn=$1 args=() t failed=0 running=0
    shift
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    shift
    for t in "$@"; do
        if [ ! -x "$BIN/$t" ]; then
            log "no such target: $t"
            failed=1
            continue
        fi
        "$fn" "$t" "${args[@]}" &
        running=$((running + 1))
        if [ $running -ge "$JOBS" ]; then
            wait -n || failed=1
            running=$((running - 1))
        fi
    done
    while [ $running -gt 0 ]; do
        wait -n || failed=1
        running=$((running - 1))
    done
    return $failed
}

mode=fuzz
secs=60
case "${1:-}" in
    regress|smoke|build|list|coverage) mode=$1; shift ;;
esac
if [ "$mode" = smoke ]; then
    secs=10
fi
if [ "$mode" = fuzz ] || [ "$mode" = smoke ]; then
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
        secs=$1
        shift
    fi
fi

if [ "$mode" = list ]; then
    all_targets
    exit 0
fi

mkdir -p "$OUT/logs"
build
[ "$mode" = build ] && exit 0

if [ "$mode" = coverage ]; then
    mkdir -p "$OUT/cov"
    make -s -C "$FUZZ" NGX="$ROOT/build/nginx" \
        SRC="$ROOT/ngx_ai_gateway_module" OUT="$OUT/cov" COV=1 -j"$JOBS" \
        >"$OUT/build-cov.log" 2>&1 || {
        cat "$OUT/build-cov.log" >&2
        exit 1
    }
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    read -r -a targets <<<"$(all_targets)"
fi

status=0

if [ "$mode" = coverage ]; then
    run_all coverage_one -- "${targets[@]}" || status=1
    coverage_all "${targets[@]}"
    log "reports: fuzz/out/cov/<target>.txt, fuzz/out/cov/all.txt"
fi

if [ "$mode" = regress ] || [ "$mode" = smoke ]; then
    log "replaying regressions and seeds"
    run_all regress_one -- "${targets[@]}" || status=1
fi

if [ "$mode" = fuzz ] || [ "$mode" = smoke ]; then
    log "fuzzing ${#targets[@]} targets, ${secs}s each, $JOBS at a time"
    run_all fuzz_one "$secs" -- "${targets[@]}" || status=1
fi

exit $status
