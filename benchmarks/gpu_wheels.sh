#!/usr/bin/env bash
# Fetch, on this (networked) machine, the Python wheels the device machine lacks for benchmarks/gpu_run.sh.
#
# The device image (see the device tool's KINDS.md) has python3 3.12 with torch, triton, numpy, matplotlib, tqdm,
# nvidia-ml-py, pytest, hypothesis, scikit-learn, pyyaml, attrs, pygments and python-dateutil, but no Jupyter
# machinery, so the notebook runs need nbclient + ipykernel and what they import, and the labs ipywidgets (7.7.1, as
# on Colab). Exactly these, no dependencies resolved (--no-deps): resolving ipywidgets 7 pulls the classic notebook
# server and jupyterlab (~57 MB), which nothing here imports. ~15 MB in all; the device tool carries at most 64 MiB.
#
# Usage (repository root):  bash benchmarks/gpu_wheels.sh [python-version]   # default 3.12, the device's
# then run on the device with carry [".whl"]:  bash benchmarks/gpu_run.sh
set -euo pipefail
PYVER=${1:-3.12}
DEST=.whl
WHEELS=(
  nbclient==0.11.0 nbformat==5.11.1 jupyter_client==8.10.0 jupyter_core==5.9.1 ipykernel==7.4.0 ipython==9.18.1
  ipython_pygments_lexers==1.1.1 traitlets==5.16.1 pyzmq==27.3.0 tornado==6.6.1 comm==0.2.3 debugpy==1.8.22
  matplotlib_inline==0.2.2 nest_asyncio2==1.7.4 fastjsonschema==2.22.3 jsonschema==4.26.0
  jsonschema_specifications==2025.9.1 referencing==0.37.0 rpds_py==2026.9.1 platformdirs==4.14.8 jedi==0.20.1
  parso==0.8.7 prompt_toolkit==3.0.53 wcwidth==0.9.4 pexpect==4.9.0 ptyprocess==0.7.0 stack_data==0.6.3
  executing==2.3.0 asttokens==3.0.2 pure_eval==0.2.4 ipython_genutils==0.2.0 ipywidgets==7.7.1 psutil==7.2.2
  typing_extensions==4.16.0
)
rm -rf "$DEST" && mkdir -p "$DEST"
PY=${PYTHON:-python3}
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_26_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 \
  --platform manylinux2010_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
  -d "$DEST" "${WHEELS[@]}"
echo "$(ls "$DEST" | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST (for Python $PYVER)"
