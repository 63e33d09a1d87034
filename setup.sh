#!/usr/bin/env bash
# setup.sh — everything a fresh Debian 12 machine needs, then the demo or the tests.
#   bash setup.sh demo    install packages, build, put the model in place, run the demo
#   bash setup.sh test    the same set-up, then every test through ctest (release, OpenBLAS-only and ASan+UBSan builds)
#   bash setup.sh build   set-up and build only
# Idempotent: installed packages, builds and a verified model are reused.
set -euo pipefail
cd "$(dirname "$0")"

# what building and the demo need
PKGS=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libdnnl-dev libcjson-dev libinih-dev libpcre2-dev libutf8proc-dev libsentencepiece-dev gnuplot-nox ca-certificates curl)
# what only the tests need: Criterion, the NumPy oracle and PyTorch references, SLURM, the fuzzers,
# valgrind, and Node.js for the reference tokenizer
TEST_PKGS=(libcriterion-dev sentencepiece python3 python3-numpy python3-torch slurm-wlm munge clang libclang-rt-14-dev valgrind)
MODEL_DIR=models/stories260K
SHARED_MODEL=../shared/models/stories260K
MODEL_URL=https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K
declare -A SHA=([stories260K.bin]=b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696
                [tok512.bin]=037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312)

log() { printf '[setup] %s\n' "$*" >&2; }

install_packages() { # install_packages PKG... (those not installed yet)
  local missing=() p
  for p in "$@"; do
    if [ "$p" = nodejs ]; then # the machine may ship its own Node.js
      command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
      continue
    fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  log "installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}

build() { # build DIR [cmake options...]
  local dir=$1; shift
  local tests=OFF # the demo builds without Criterion; the test set-up with it
  pkg-config --exists criterion && tests=ON
  cmake -S . -B "$dir" -DINFOFLOW_MODEL_DIR="$PWD/$MODEL_DIR" -DINFOFLOW_BUILD_TESTS=$tests "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

fetch_model() {
  mkdir -p "$MODEL_DIR"
  local f
  for f in "${!SHA[@]}"; do
    sha_ok "$MODEL_DIR/$f" "${SHA[$f]}" && continue
    if [ -f "$SHARED_MODEL/$f" ]; then
      log "copying $f from $SHARED_MODEL"
      cp "$SHARED_MODEL/$f" "$MODEL_DIR/$f.tmp"
    else
      log "downloading $f from $MODEL_URL"
      curl -fsSL --retry 3 -o "$MODEL_DIR/$f.tmp" "$MODEL_URL/$f"
    fi
    sha_ok "$MODEL_DIR/$f.tmp" "${SHA[$f]}" || { log "error: $f does not match its sha256 ${SHA[$f]}"; exit 1; }
    mv "$MODEL_DIR/$f.tmp" "$MODEL_DIR/$f"
  done
}

setup() { install_packages "${PKGS[@]}" "$@"; fetch_model; build build -DCMAKE_BUILD_TYPE=Release; }

case "${1:-demo}" in
  build) setup ;;
  demo)
    setup
    [ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    log "demo 1/4: greedy story from stories260K (the model's golden output)"
    build/infoflow generate --model "$MODEL_DIR" --prompt "Once upon a time" --steps 64 --temperature 0
    log "demo 2/4: caching the bundled sample corpus with 2 MPI ranks into out/demo/store"
    rm -rf out/demo
    mpirun -n 2 build/infoflow cache --model "$MODEL_DIR" --corpus jobs/data/demo_corpus.jsonl --store out/demo/store
    build/infoflow verify --store out/demo/store
    log "demo 3/4: one question, InfoFlow against a full prefill"
    build/infoflow query --model "$MODEL_DIR" --store out/demo/store --docs story10,story04,story12 \
      --prompt "Once upon a time," --steps 12 --compare-full
    log "demo 4/4: every method on the sample queries, a needle grid and a scoring-layer ablation (jobs/demo.ini)"
    mpirun -n 2 build/infoflow eval --job jobs/demo.ini
    log "demo: results and plots in out/demo/ (summary.md, fidelity.jsonl, needle.jsonl, *.png)"
    ;;
  test)
    setup "${TEST_PKGS[@]}" nodejs
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    log "tests: release build"
    ctest --test-dir build --output-on-failure
    log "tests: OpenBLAS-only build (-DINFOFLOW_ONEDNN=OFF): the unit tests and the query tests on the portable GEMM path"
    build build-openblas -DCMAKE_BUILD_TYPE=Release -DINFOFLOW_ONEDNN=OFF
    ctest --test-dir build-openblas --output-on-failure -R '^(test_|query_)'
    log "tests: ASan+UBSan build (every test but valgrind, which cannot run sanitized binaries, the fuzzers,"
    log "       which carry their own sanitizers, and the SLURM scripts, which the release pass covers)"
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DINFOFLOW_SANITIZE=ON
    # full stacks (fast_unwind_on_malloc=0) so that the suppressions can see Open MPI's own frames
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0 \
      ctest --test-dir build-asan --output-on-failure -LE "valgrind|fuzz|slurm"
    ;;
  *) echo "usage: bash setup.sh [demo|test|build]" >&2; exit 2 ;;
esac
