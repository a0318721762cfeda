#!/usr/bin/env bash
# ui-venv.sh VENV — the venv of `make test-ui`: open-webui (PyPI) and selenium, with torch pinned to its CPU build
# (open-webui otherwise pulls CUDA torch and the nvidia-* wheels, ~3 GB). The CPU wheel comes from pip's find-links
# folder where the machine has one (these machines: /opt/wheels), else from PyTorch's CPU index.
set -euo pipefail
VENV=${1:?usage: ui-venv.sh VENV}
OPEN_WEBUI=${OPEN_WEBUI:-open-webui==0.12.4}
SELENIUM=${SELENIUM:-selenium==4.51.0}
TORCH=${UI_TORCH:-torch==2.13.0+cpu}
"$VENV/bin/python" -c 'import open_webui, selenium' 2>/dev/null && exit 0
test -x "$VENV/bin/python" || python3 -m venv "$VENV"
echo "$TORCH" > "$VENV/constraints.txt"
extra=()
if ! "$VENV/bin/pip" download -q --no-deps --no-index -d "$VENV/.torch-probe" "$TORCH" >/dev/null 2>&1; then
  extra=(--extra-index-url https://download.pytorch.org/whl/cpu)
fi
rm -rf "$VENV/.torch-probe"
echo "installing $OPEN_WEBUI and $SELENIUM into $VENV (${extra[*]:-torch from find-links})"
"$VENV/bin/pip" install -q -c "$VENV/constraints.txt" "${extra[@]}" "$OPEN_WEBUI" "$SELENIUM"
