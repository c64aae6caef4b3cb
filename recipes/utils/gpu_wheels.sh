#!/usr/bin/env bash
# Download, into .whl/ at the repository root, the wheels (CPython 3.12, x86-64 Linux) of the
# packages that the lent GPU machines lack and that training, export and the benchmarks import
# there (their image has torch, torchaudio, Lightning, numpy, scipy, PyYAML, click, tqdm...;
# see the device tool's KINDS.md; museval and its needs for benchmarks/score_speed.py). Versions
# are the pins of requirements.txt. About 7 MB.
#
#   bash recipes/utils/gpu_wheels.sh        # then carry ".whl" in the device run
#
# A command on the GPU machine installs them with
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD
# (recipes/omni/gpu_train.sh does this itself). A package published only as a source archive
# (fast-bss-eval, pure Python) is built into a wheel here.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
packages="asteroid asteroid-filterbanks lhotse cytoolz intervaltree soundfile cffi pycparser
          torch-stoi pystoi fast-bss-eval museval musdb stempeg ffmpeg-python future pyaml
          jsonschema jsonschema-specifications referencing rpds-py"
mkdir -p "$root/.whl"
for name in $packages; do
  pin=$(grep -i -E "^${name//-/[-_]}==" "$root/requirements.txt" || true)
  [ -n "$pin" ] || { echo "gpu_wheels.sh: $name has no pin in requirements.txt" >&2; exit 1; }
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$root/.whl" "$pin" 2> /dev/null ||
    python3 -m pip wheel -q --no-deps -w "$root/.whl" "$pin"   # a pure-Python sdist (fast_bss_eval)
done
du -sh "$root/.whl" >&2
