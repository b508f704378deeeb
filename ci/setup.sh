#!/usr/bin/env bash
# Installs speedbench's runtime dependencies, idempotently, into a cache folder
# outside the repository that later clones reuse, and writes .cargo/config.toml
# so that a plain `cargo build|test|run` finds every library with no
# environment variables.
#
#   ci/setup.sh          CPU wheels (onnxruntime, torch, tensorflow-cpu)
#   ci/setup.sh --gpu    GPU wheels (onnxruntime-gpu, tensorflow[and-cuda], torch+CUDA)
#
# SPEEDBENCH_CACHE overrides the cache folder (default ~/.cache/speedbench).
set -euo pipefail

flavour=cpu
for arg in "$@"; do
  case "$arg" in
    --gpu) flavour=gpu ;;
    --cpu) flavour=cpu ;;
    *) echo "ci/setup.sh: unknown argument '$arg' (expected --gpu or --cpu)" >&2; exit 2 ;;
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

if [ "$flavour" = gpu ]; then
  wheels=("onnxruntime-gpu==$ORT_VERSION" "tensorflow[and-cuda]==$TF_VERSION")
else
  wheels=("onnxruntime==$ORT_VERSION" "tensorflow-cpu==$TF_VERSION")
fi
# torch 2.11.0 from the index is the CUDA 13 build on both flavours; its
# nvidia-* dependencies provide libcudart.so.13 that libtorch_cpu.so links to.
wheels+=("torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
         "timm" "onnx" "numpy" "safetensors")
stamp="$venv/.speedbench-$(printf '%s\n' "${wheels[@]}" | sha1sum | cut -c1-12)"

mkdir -p "$cache"
if [ ! -f "$stamp" ]; then
  echo "setup: installing ${wheels[*]} into $venv" >&2
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${wheels[@]}"
  touch "$stamp"
else
  echo "setup: $venv is up to date" >&2
fi

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# TensorFlow's C API lives inside the wheel as libtensorflow_cc.so.2; give
# tensorflow-sys the names and the pkg-config file it looks for.
tfdir="$cache/tensorflow-$flavour"
mkdir -p "$tfdir"
ln -sf "$site/tensorflow/libtensorflow_cc.so.2" "$tfdir/libtensorflow.so"
ln -sf "$site/tensorflow/libtensorflow_cc.so.2" "$tfdir/libtensorflow.so.2"
ln -sf "$site/tensorflow/libtensorflow_framework.so.2" "$tfdir/libtensorflow_framework.so"
ln -sf "$site/tensorflow/libtensorflow_framework.so.2" "$tfdir/libtensorflow_framework.so.2"
cat > "$tfdir/tensorflow.pc" <<PC
prefix=$tfdir
libdir=$tfdir
includedir=$site/tensorflow/include

Name: tensorflow
Description: TensorFlow C API from the tensorflow $TF_VERSION wheel
Version: $TF_VERSION
Libs: -L$tfdir -ltensorflow -ltensorflow_framework
Cflags: -I$site/tensorflow/include
PC

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
SPEEDBENCH_RPATH = "$site/torch/lib:$tfdir:$site/tensorflow:$nvidia_libs"
SPEEDBENCH_VENV = "$venv"
SPEEDBENCH_FLAVOUR = "$flavour"
TOML
echo "setup: wrote $repo/.cargo/config.toml" >&2
