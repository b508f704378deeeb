#!/usr/bin/env bash
# Installs speedbench's runtime dependencies, idempotently, into a cache folder
# outside the repository that later clones reuse, and writes .cargo/config.toml
# so that a plain `cargo build|test|run` finds every library with no
# environment variables.
#
#   ci/setup.sh          CPU wheels (onnxruntime, torch, tensorflow-cpu)
#   ci/setup.sh --gpu    GPU wheels (onnxruntime-gpu, tensorflow[and-cuda], torch+CUDA)
#   ci/setup.sh --gpu-tf only --gpu's TensorFlow environment (tensorflow[and-cuda],
#                        CUDA 12) and its link folder, leaving .cargo/config.toml
#                        as it is; writes the variables a build linking that
#                        TensorFlow needs to $cache/tensorflow-gpu/build-env
#                        (ci/gpu-libs.sh uses it on a CPU build)
#
# SPEEDBENCH_CACHE overrides the cache folder (default ~/.cache/speedbench).
set -euo pipefail

flavour=cpu
tf_only=0
for arg in "$@"; do
  case "$arg" in
    --gpu) flavour=gpu ;;
    --gpu-tf) flavour=gpu; tf_only=1 ;;
    --cpu) flavour=cpu ;;
    *) echo "ci/setup.sh: unknown argument '$arg' (expected --gpu, --gpu-tf or --cpu)" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SPEEDBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/speedbench}"
venv="$cache/venv-$flavour"
python="${PYTHON:-python3}"

ORT_VERSION=1.31.1
TORCH_VERSION=2.11.0
TORCHVISION_VERSION=0.26.0
TF_VERSION=2.21.0

# One CUDA stack per environment, never sharing files: torch 2.11 and
# onnxruntime-gpu 1.31 are CUDA 13 builds (nvidia/cu13, cuDNN 9 for CUDA 13);
# tensorflow[and-cuda] 2.21 brings CUDA 12 (nvidia-*-cu12). Installed into one
# venv, the cu12 wheels overwrite files of the cu13 ones (cuDNN, NCCL), so on
# --gpu TensorFlow gets a venv of its own. ci/check-records.py refuses an
# environment in which two distributions own one file.
if [ "$flavour" = gpu ]; then
  wheels=("onnxruntime-gpu==$ORT_VERSION")
  tf_wheels=("tensorflow[and-cuda]==$TF_VERSION")
else
  wheels=("onnxruntime==$ORT_VERSION" "tensorflow-cpu==$TF_VERSION")
  tf_wheels=()
fi
# torch 2.11.0 from the index is the CUDA 13 build on both flavours; its
# nvidia-* dependencies provide libcudart.so.13 that libtorch_cpu.so links to.
# nvidia-cuda-crt: the crt/ headers CUDA's runtime headers include, for the
# CUDA-graph shim build.rs compiles against libtorch_cuda (134 kB)
wheels+=("torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "nvidia-cuda-crt==13.0.88"
         "timm" "onnx" "numpy" "safetensors")

# install VENV WHEEL...: idempotent (a stamp names the wheel set), checked
install() {
  local env="$1"; shift
  local stamp
  stamp="$env/.speedbench-$(printf '%s\n' "$@" | sha1sum | cut -c1-12)"
  if [ -f "$stamp" ]; then
    echo "setup: $env is up to date" >&2
    return
  fi
  echo "setup: installing $* into $env" >&2
  [ -x "$env/bin/python" ] || "$python" -m venv "$env"
  "$env/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$env/bin/python" -m pip install -q --disable-pip-version-check "$@"
  local env_site
  env_site="$("$env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  "$env/bin/python" "$repo/ci/check-records.py" "$env_site"
  touch "$stamp"
}

mkdir -p "$cache"
[ "$tf_only" = 1 ] || install "$venv" "${wheels[@]}"
tf_venv="$venv"
if [ "${#tf_wheels[@]}" -gt 0 ]; then
  tf_venv="$cache/venv-$flavour-tf"
  install "$tf_venv" "${tf_wheels[@]}"
fi

tf_site="$("$tf_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# TensorFlow's C API lives inside the wheel as libtensorflow_cc.so.2; give
# tensorflow-sys the names and the pkg-config file it looks for.
tfdir="$cache/tensorflow-$flavour"
mkdir -p "$tfdir"
# Only the unversioned names the linker's -l looks for: at run time the
# loader asks for the libraries' sonames (libtensorflow_cc.so.2,
# libtensorflow_framework.so.2), which only the wheel's folder has, so they
# load from their real location and their own relative searches for the
# nvidia/ folders start from there, not from this symlink folder.
rm -f "$tfdir/libtensorflow.so.2" "$tfdir/libtensorflow_framework.so.2"
ln -sf "$tf_site/tensorflow/libtensorflow_cc.so.2" "$tfdir/libtensorflow.so"
ln -sf "$tf_site/tensorflow/libtensorflow_framework.so.2" "$tfdir/libtensorflow_framework.so"
cat > "$tfdir/tensorflow.pc" <<PC
prefix=$tfdir
libdir=$tfdir
includedir=$tf_site/tensorflow/include

Name: tensorflow
Description: TensorFlow C API from the tensorflow $TF_VERSION wheel
Version: $TF_VERSION
Libs: -L$tfdir -ltensorflow -ltensorflow_framework
Cflags: -I$tf_site/tensorflow/include
PC

if [ "$tf_only" = 1 ]; then
  # what a build linking this TensorFlow sets over .cargo/config.toml
  # (cargo's [env] never overrides the environment)
  cat > "$tfdir/build-env" <<ENV
PKG_CONFIG_PATH=$tfdir
SPEEDBENCH_TF_VENV=$tf_venv
SPEEDBENCH_TF_RPATH=$tfdir:$tf_site/tensorflow
ENV
  echo "setup: wrote $tfdir/build-env" >&2
  exit 0
fi

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

ort_lib="$(ls "$site"/onnxruntime/capi/libonnxruntime.so.* | head -n1)"
# Every nvidia/*/lib folder: libtorch_cpu.so needs libcudart.so.13 and
# libcupti.so.13 even on CPU.
nvidia_libs="$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | sort | paste -sd: -)"

mkdir -p "$repo/.cargo"
cat > "$repo/.cargo/config.toml" <<TOML
# Written by ci/setup.sh ($flavour); not tracked. Rerun ci/setup.sh to refresh.
[env]
PKG_CONFIG_PATH = "$tfdir"
LIBTORCH = "$site/torch"
LIBTORCH_BYPASS_VERSION_CHECK = "0"
SPEEDBENCH_ORT_LIB = "$ort_lib"
SPEEDBENCH_RPATH = "$site/torch/lib:$tfdir:$tf_site/tensorflow:$nvidia_libs"
SPEEDBENCH_VENV = "$venv"
SPEEDBENCH_TF_VENV = "$tf_venv"
SPEEDBENCH_FLAVOUR = "$flavour"
TOML
echo "setup: wrote $repo/.cargo/config.toml" >&2
