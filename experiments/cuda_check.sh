#!/usr/bin/env bash
# The checks that need a GPU, in one prepared run that fits a 10-minute slot:
#
#   bash experiments/cuda_check.sh RESULTS_DIR
#
# 1. the CUDA tests (tests/test_cuda.py; test_ddp.py's NCCL cases need 2+ GPUs)
# 2. experiments/benchmark.py --device cuda --release: training and inference
#    throughput, latency and peak memory, float32 and bf16, batch 1-4096
# 3. the same with torch.compile (bf16, batch 128 and 1024: each shape compiles anew)
# 4. experiments/configs/cuda_amp_c2015.toml: bf16 against float32 on the validation folds
#    (the runner keeps its runs in experiments/results/cuda-amp-c2015/ of the checkout, where
#    a rerun resumes them; the tables and run records are copied into RESULTS_DIR)
#
# Each step has its own time limit and writes its log and results into RESULTS_DIR as it
# finishes, so a step that runs out of time loses only itself. Run it from the repository
# root with a Python that has torch (CUDA build) and the package's dependencies; where
# FrEIA or wfdb is missing and a folder .whl/ holds their wheels, they are installed into
# /tmp/site first. The real data comes from experiments/data/challenge2015.h5 (made by
# any real-data experiment on a machine that has ../shared) or from ../shared itself.
set -u
out=${1:?usage: bash experiments/cuda_check.sh RESULTS_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}

if ! "$py" -c "import FrEIA, wfdb" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'" || exit 1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to RESULTS_DIR/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc"
    tail -n 5 "$out/$name.log"
}

step pytest-cuda 200 "$py" -m pytest -q -p no:cacheprovider -k cuda tests/test_cuda.py tests/test_ddp.py
step benchmark-cuda 150 sh -c \
    "$py experiments/benchmark.py --device cuda --release --min-seconds 1 --json > $out/benchmark-cuda.json"
step benchmark-cuda-compile 120 sh -c \
    "$py experiments/benchmark.py --device cuda --compile --modes bf16 --batch-sizes 128,1024 --min-seconds 1 --json > $out/benchmark-cuda-compile.json"
step cuda-amp 150 "$py" experiments/run.py experiments/configs/cuda_amp_c2015.toml --device cuda --quiet
# The tables (written when every run is done) and each finished run's record and log.
cp experiments/results/cuda-amp-c2015/results.md "$out/cuda-amp-results.md" 2>/dev/null
cp experiments/results/cuda-amp-c2015/results.json "$out/cuda-amp-results.json" 2>/dev/null
tar czf "$out/cuda-amp-runs.tgz" --exclude='*.pt' experiments/results/cuda-amp-c2015/runs 2>/dev/null
exit 0
