#!/usr/bin/env bash
# Installs the Debian packages Sputnik builds against, when any is missing (run as root, or with sudo available);
# `install-deps.sh ui` adds those of `make test-ui` (chromium, chromium-driver).
set -euo pipefail
need=()
# openssl and curl: the TLS tests make their certificates with the openssl tool and fetch with curl --cacert.
for p in libopenblas-dev libssl-dev zlib1g-dev pkg-config python3-venv unzip openssl curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
# `install-deps.sh ui` (make test-ui): Debian's Chromium and its WebDriver, for the Open WebUI browser test.
if [ "${1:-}" = ui ]; then
  for p in chromium chromium-driver; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
fi
# kubectl renders deploy/k8s (`kubectl kustomize`) for the manifest tests; Debian's package when none is installed.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
# python3-venv is Debian's; a python3 that already has a working venv module needs no package for it.
if [ ${#need[@]} -gt 0 ] && printf '%s\n' "${need[@]}" | grep -qx python3-venv && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  need=("${need[@]/python3-venv}")
fi
need=($(printf '%s\n' "${need[@]}" | grep -v '^$' || true))
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
