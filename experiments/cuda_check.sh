#!/usr/bin/env bash
# The checks that need a GPU, in one prepared run that fits one 10-minute command:
#
#   bash experiments/cuda_check.sh [--force] RESULTS_DIR
#
# 1. experiments/benchmark.py --device cuda --release: training and inference throughput,
#    latency and peak memory, float32 and bf16, batch 1-4096 (the README's Speed table)
# 2. experiments/configs/cuda_amp_c2015.toml on validation fold 1 (test fold 0): bf16
#    against float32 with the default recipe (about 1.5 min per run: 40 epochs, each
#    validated by the protocol on the CPU)
# 3. the CUDA tests (tests/test_cuda.py; test_ddp.py's NCCL cases need 2+ GPUs)
# 4. the benchmark with torch.compile (bf16, batch 128: each new shape compiles anew)
# in the order of what a result is worth if the slot ends early.
#
# Each step has its own time limit (500 s in all, 560 s with the 15 s grace of each kill,
# about 20 s of set-up on top: keep the device command's limit at 600 s) and writes its
# log, and its results as they come, into RESULTS_DIR, so a step that runs out of time
# loses only what it had left to do. RESULTS_DIR gets 8 files: env.txt and, per step, a log, the benchmarks' JSON and
# the amp runs' tables and records (cuda-amp.tgz). Run it from the repository root with a
# Python that has torch with CUDA. The device machines of this project have torch but not
# FrEIA (nor wfdb, which these steps do not need): build its wheel here first and carry it,
#
#   echo /.whl/ >> .git/info/exclude; python -m pip wheel --no-deps FrEIA==0.2 -w .whl
#
# (carry .whl and experiments/data/challenge2015.h5, which any real-data experiment makes on
# a machine that has ../shared); the script installs .whl/*.whl into /tmp/site. It stops
# at once, exit 1, when FrEIA, CUDA or the data is missing, and exits 1 at the end when a
# step failed (the others still run). A RESULTS_DIR that holds an earlier run's results is
# refused (the slot is too scarce to spend on a run whose benchmarks could not write, next to
# the old ones); --force deletes those results once the checks below have passed, so that
# every file in it is from this run.
set -u
usage="usage: bash experiments/cuda_check.sh [--force] RESULTS_DIR"
force=0
if [ "${1-}" = --force ]; then
    force=1
    shift
fi
if [ $# -ne 1 ] || [ -z "$1" ] || [ "${1#-}" != "$1" ]; then
    echo "cuda_check: $usage" >&2
    exit 2
fi
out=$1
fail() {
    echo "cuda_check: $*" >&2
    exit 1
}
# RESULTS_DIR before anything else (the CUDA check takes seconds, the steps minutes), without
# creating it yet: a run that stops at a check below leaves no empty folder behind.
if [ -e "$out" ] && [ ! -d "$out" ]; then
    fail "$out is not a folder; give a folder for the results"
fi
parent=$out
while [ ! -e "$parent" ]; do
    parent=$(dirname "$parent")
done
if [ ! -d "$parent" ]; then
    fail "cannot create $out: $parent is not a folder"
fi
# A file made and removed, not [ -w ]: root passes -w on a read-only file system too.
if ! probe=$(mktemp "$parent/.cuda_check.XXXXXX" 2>/dev/null); then
    fail "cannot write in $parent"
fi
rm -f "$probe"
results=(env.txt benchmark-cuda.log benchmark-cuda.json cuda-amp.log cuda-amp.tgz
    pytest-cuda.log benchmark-cuda-compile.log benchmark-cuda-compile.json)
old=()
for name in "${results[@]}"; do
    [ -e "$out/$name" ] && old+=("$name")
done
if [ "${#old[@]}" -gt 0 ] && [ "$force" -eq 0 ]; then
    fail "$out already holds the results of a run (${old[*]}); give another folder, or \
--force to replace them"
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}

if ! "$py" -c "import FrEIA" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
if ! why=$("$py" -c "import torch, FrEIA, innpar_freia.nn.model
assert torch.cuda.is_available(), 'torch sees no CUDA device'" 2>&1); then
    # The last line of what Python said (the failed import or the assertion), no traceback.
    echo "cuda_check: needs torch with CUDA and FrEIA (carry .whl, see the header): \
$(printf '%s\n' "$why" | tail -n 1)" >&2
    exit 1
fi
if [ ! -f experiments/data/challenge2015.h5 ] && [ ! -d ../shared/data/challenge2015 ]; then
    echo "cuda_check: no experiments/data/challenge2015.h5 (carry it) nor ../shared" >&2
    exit 1
fi
for name in "${old[@]}"; do  # --force, and every check has passed
    rm -f "$out/$name" || fail "cannot remove $out/$name"
done
mkdir -p "$out" || fail "cannot create $out"
{
    nvidia-smi
    "$py" -c "import sys, torch, FrEIA; print('python', sys.version.split()[0], '| torch',
torch.__version__, '| cuda', torch.version.cuda, '| FrEIA', getattr(FrEIA, '__version__', '?'))"
} 2>&1 | tee "$out/env.txt"

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to RESULTS_DIR/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    # -k: a process that outlives its SIGTERM by 15 s is killed.
    timeout -k 15 "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc"
    tail -n 8 "$out/$name.log"
    [ "$rc" -eq 0 ] || failed+=("$name")
}
failed=()

step benchmark-cuda 120 "$py" experiments/benchmark.py --device cuda --release \
    --min-seconds 1 --out "$out/benchmark-cuda.json"
# The amp runs in a folder of their own, new each time: in experiments/results/ (git-ignored
# runs) a warm machine kept the last call's, and the next call skipped them as finished and
# packed the old ones into its results.
amp=$(mktemp -d "${TMPDIR:-/tmp}/cuda-amp.XXXXXX") || fail "cannot make a folder for the amp runs"
step cuda-amp 200 "$py" experiments/run.py experiments/configs/cuda_amp_c2015.toml \
    --device cuda --folds 0 --out "$amp"
# The amp runs' tables (rewritten after each run) and records, without the checkpoints,
# at once: a slot that ends during the next steps keeps them. Unpacked in
# experiments/results/, they are experiments/results/cuda-amp-c2015/.
tar czf "$out/cuda-amp.tgz" --exclude='*.pt' -C "$amp" . 2>/dev/null
step pytest-cuda 110 "$py" -m pytest -q -p no:cacheprovider -k cuda tests/test_cuda.py \
    tests/test_ddp.py
step benchmark-cuda-compile 70 "$py" experiments/benchmark.py --device cuda --compile \
    --modes bf16 --batch-sizes 128 --min-seconds 1 --out "$out/benchmark-cuda-compile.json"
ls "$out"
# Every step runs whatever the others did; the exit status says whether all of them passed.
if [ "${#failed[@]}" -gt 0 ]; then
    echo "cuda_check: failed steps: ${failed[*]}" >&2
    exit 1
fi
