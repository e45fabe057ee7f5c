#!/usr/bin/env bash
# A software Vulkan driver (Mesa's lavapipe) for onnxruntime-node's WebGPU provider (Dawn on Vulkan),
# so the WebGPU tests run on a machine with no GPU. Debian 12's own lavapipe (Mesa 22.3) is rejected
# by Dawn; Mesa 25 from bookworm-backports works. It is unpacked into .apt/ (no system changes beyond
# the libvulkan1 and libllvm15 packages); tests find it through VK_ICD_FILENAMES=.apt/lvp25_icd.json.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .apt/lvp25_icd.json ] && [ -f .apt/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so ]; then
  echo "lavapipe already unpacked in .apt/"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
dpkg -s libvulkan1 libllvm15 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libvulkan1 libllvm15 >/dev/null; }
rm -rf .apt && mkdir -p .apt/lists/partial .apt/cache/archives/partial .apt/debs .apt/root
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-backports main" > .apt/sources.list
O="-o Dir::Etc::sourcelist=$PWD/.apt/sources.list -o Dir::Etc::sourceparts=/nonexistent -o Dir::State::Lists=$PWD/.apt/lists -o Dir::Cache=$PWD/.apt/cache -o Debug::NoLocking=1"
# shellcheck disable=SC2086
apt-get $O update -qq
# shellcheck disable=SC2086
(cd .apt/debs && apt-get $O download -qq mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports)
for d in .apt/debs/*.deb; do dpkg -x "$d" .apt/root; done
sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$PWD/.apt/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so\"#" \
  .apt/root/usr/share/vulkan/icd.d/lvp_icd.json > .apt/lvp25_icd.json
echo "lavapipe unpacked: VK_ICD_FILENAMES=$PWD/.apt/lvp25_icd.json"
