# Sourced by the GPU-machine scripts: installs the wheels that travel in .whl/ (packages the GPU machine lacks)
# to /tmp/site and sets PYTHONPATH and the offline environment. Expects to be sourced from the repository root.
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
# the repository root makes `python3 -m benchmarks.<part>.<script>` and this checkout's recgoat_cli importable
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# POT imports JAX when it is installed (it is on the GPU machine), and JAX reserves 75% of the GPU per process
export POT_BACKEND_DISABLE_JAX=1 POT_BACKEND_DISABLE_CUPY=1 POT_BACKEND_DISABLE_TENSORFLOW=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
