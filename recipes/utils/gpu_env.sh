# Sourced by the scripts that run on the lent GPU machine (recipes/omni/gpu_train.sh,
# benchmarks/gpu_check.sh): puts the repository on PYTHONPATH and, when Lhotse, Asteroid or
# soundfile cannot be imported, first installs the carried wheels of .whl/ (written here by
# recipes/utils/gpu_wheels.sh) into /tmp/site. Sets $python (default python3: the one that
# holds PyTorch there).
gpu_env_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python=${PYTHON:-python3}
export PYTHONPATH=$gpu_env_root${PYTHONPATH:+:$PYTHONPATH}
if ! "$python" -c "import lhotse, asteroid, soundfile" 2> /dev/null \
    && ls "$gpu_env_root"/.whl/*.whl > /dev/null 2>&1; then
  echo "installing the carried wheels ($gpu_env_root/.whl) into /tmp/site" >&2
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$gpu_env_root"/.whl/*.whl
  export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
