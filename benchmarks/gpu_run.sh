#!/usr/bin/env bash
# The whole GPU check as one device-machine command (the device tool's `run`, with carry [".whl"]):
#
#     bash benchmarks/gpu_run.sh                 # gpu-marked tests, then benchmarks/gpu_check.py with notebooks
#     bash benchmarks/gpu_run.sh --skip-notebooks
#
# Prepare once, here: bash benchmarks/gpu_wheels.sh (the device has torch but no Jupyter machinery).
# efflab is imported from this checkout (PYTHONPATH), so the notebooks' setup cells find it and install nothing.
# Logs and the Markdown report go to $OUT (the device tool brings that folder back), else to ./gpu-out.
# Extra arguments go to gpu_check.py (e.g. --cpu-rehearsal --notebooks '*lab1*' to rehearse on a CPU).
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/efflab-site .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 1; }
  export PYTHONPATH=/tmp/efflab-site:$PWD
elif [[ " $* " == *" --skip-notebooks "* ]]; then
  export PYTHONPATH=$PWD
else
  # Without them the test collection stops (three test files import nbformat/nbclient) and no notebook runs:
  # say so before any device time is spent.
  echo "no .whl/ here: run bash benchmarks/gpu_wheels.sh first and carry [\".whl\"] (or pass --skip-notebooks)"
  exit 2
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
  "$PY" -c "import torch, efflab; print('torch', torch.__version__, 'cuda', torch.cuda.is_available()); print(efflab.doctor())"
} 2>&1 | tee "$OUT/gpu_env.txt"
# gpu-marked tests; the instruments test is skipped here because gpu_check.py below runs the same instruments.
# addopts is cleared: the repository's pytest options name nbval, which the device does not need for these tests.
# Time caps (s) so that the whole run ends within 8 minutes of a 10-minute lease: tests, then the check (whose own
# notebook deadline is 270 s); the report is rewritten after every section, so a cap loses only the section it cut.
timeout 120 "$PY" -m pytest -q -m gpu -o addopts="" -p no:cacheprovider tests \
  --deselect tests/test_gpu_check.py::test_gpu_check_instruments 2>&1 | tee "$OUT/gpu_tests.log"
tests_rc=${PIPESTATUS[0]}
timeout 330 "$PY" benchmarks/gpu_check.py --out "$OUT/gpu_report.md" "$@" 2>&1 | tee "$OUT/gpu_check.log"
check_rc=${PIPESTATUS[0]}
echo "gpu tests rc=$tests_rc, gpu_check rc=$check_rc; report: $OUT/gpu_report.md"
[ "$tests_rc" -eq 0 ] || [ "$tests_rc" -eq 5 ] || exit "$tests_rc"   # 5: no gpu tests collected (CPU rehearsal)
exit "$check_rc"
