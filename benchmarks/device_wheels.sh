#!/usr/bin/env bash
# Before a device call: the wheels benchmarks/device_check.sh installs on the GPU machine (Python
# 3.12, torch preinstalled, no papermill, no network), downloaded here into .device/wheels (ignored
# through .git/info/exclude; name it in the device tool's carry).  numpy and Pillow are left out:
# the device's torch/torchvision bring them, and the carry is capped at 64 MiB (this is ~47 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.device/wheels
mkdir -p "$dest" .git/info
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
pip=${PIP:-.venv/bin/pip}
"$pip" download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d "$dest" papermill ipykernel pandas matplotlib seaborn pyyaml submitit
rm -f "$dest"/numpy-*.whl "$dest"/pillow-*.whl
echo "device wheels: $(ls "$dest" | wc -l) files, $(du -sh "$dest" | cut -f1) in $dest"
