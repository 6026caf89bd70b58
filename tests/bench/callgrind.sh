#!/usr/bin/env bash
# Instructions per warm invocation, exact and independent of machine load:
# runs the benchmark twice for one function with every function binary under
# `valgrind --tool=callgrind` (warm runs of 50 and 250 invocations per lookup
# form) and divides the difference of the warm process's totals by 400.
#
#   tests/bench/callgrind.sh BIN_DIR [FUNCTION] [OUT_DIR]
#
# BIN_DIR holds release binaries of all functions (build them unstripped for
# symbols: CARGO_PROFILE_RELEASE_STRIP=false; stripping does not change the
# code). The bench binary is taken from BIN_DIR too. Needs valgrind and the
# .venv that ./dev creates. The callgrind files stay in OUT_DIR for
# callgrind_annotate.
#
# The benchmark stops function processes with SIGKILL, which would lose the
# profile; so each wrapper runs valgrind in the background and only the
# wrapper shell is killed. The function then exits by itself when its Runtime
# API goes away, and callgrind writes its file.
set -euo pipefail
bin_dir=$(realpath "${1:?usage: tests/bench/callgrind.sh BIN_DIR [FUNCTION] [OUT_DIR]}")
function=${2:-reset-passcode}
out=$(realpath -m "${3:-target/bench/callgrind}")
root=$(cd "$(dirname "$0")/../.." && pwd)
functions=(reset-passcode remove-passcode reset-windows-pin passcode-status reveal-passcode)

total() { # warm run size -> instructions of its warm (largest) process
    local n=$1 dir=$out/$1
    rm -rf "$dir" && mkdir -p "$dir/bin"
    for f in "${functions[@]}"; do
        [[ -x $bin_dir/$f ]] || continue
        printf '#!/bin/sh\n/usr/bin/valgrind --tool=callgrind --callgrind-out-file=%s/cg.%s.%%p.out %s "$@" 2>>%s/valgrind.log &\nwait $!\n' \
            "$dir" "$f" "$bin_dir/$f" "$dir" >"$dir/bin/$f"
        chmod +x "$dir/bin/$f"
    done
    PATH="$root/.venv/bin:$PATH" PASSCODE_BIN_DIR="$dir/bin" "$bin_dir/bench" \
        --function "$function" --init 1 --warm "$n" --json "$dir/bench.json" >"$dir/bench.txt" 2>&1
    # Orphaned valgrind processes finish on their own; wait for their files.
    for _ in $(seq 60); do
        (($(grep -c 'I   refs' "$dir/valgrind.log" 2>/dev/null || echo 0) >= 3)) && break
        sleep 1
    done
    grep 'I   refs' "$dir/valgrind.log" | tr -d , | awk '{print $NF}' | sort -n | tail -1
}

small=$(total 50)
large=$(total 250)
echo "$function: $small instructions (50 warm per form), $large (250 warm per form)"
echo "per warm invocation: $(((large - small) / 400))"
