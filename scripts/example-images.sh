#!/usr/bin/env bash
# Renders the example issue's images from their sources (HTML with inline SVG) with headless
# Chromium, into static/img/issues/. When Python's Pillow is installed, the PNGs are then
# reduced to a 64-colour palette, which keeps these flat drawings to a few kilobytes.
#
#   scripts/example-images.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=static/img/issues
mkdir -p "$out"
chromium=$(command -v chromium || command -v chromium-browser || command -v google-chrome)

render() { # SOURCE WIDTH HEIGHT TARGET
    "$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=1 --window-size="$2,$3" \
        --screenshot="$4" "file://$PWD/$1" >/dev/null 2>&1
    echo "rendered $4 ($(stat -c %s "$4") bytes)"
}

render scripts/example-images/cover.html 1200 480 "$out/welcome-cover.png"
render scripts/example-images/pipeline.html 1104 320 "$out/pipeline.png"

if python3 -c 'import PIL' 2>/dev/null; then
    python3 - "$out/welcome-cover.png" "$out/pipeline.png" <<'PY'
import sys
from PIL import Image
for path in sys.argv[1:]:
    image = Image.open(path).convert("RGB")
    image.quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"palette {path}")
PY
fi
ls -l "$out"
