#!/usr/bin/env bash
# The wheel works where the checkout is not: build it, install it (with only its
# own dependencies, no extras) in a fresh virtual environment, and from a folder
# outside the checkout check that `avatar serve` answers GET / with the page and
# `avatar render` writes an mp4. Run by .ci/run; takes about a minute.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "check_wheel: building the wheel ..."
python3 -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo" 2>/dev/null
wheel="$(ls "$work"/dist/avatar_engine-*.whl)"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip 2>/dev/null
echo "check_wheel: installing $(basename "$wheel") in a fresh venv ..."
"$work/venv/bin/python" -m pip install --quiet "$wheel" 2>/dev/null
cd "$work"  # nothing of the checkout is importable from here

"$work/venv/bin/avatar" serve --host 127.0.0.1 --port 0 >"$work/serve.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 240); do
    url="$(grep -o 'open http://[^ ]*' "$work/serve.log" | head -n1 | cut -d' ' -f2 || true)"
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; echo "check_wheel: avatar serve exited"; exit 1; }
    sleep 0.5
done
[ -n "$url" ] || { cat "$work/serve.log"; echo "check_wheel: avatar serve did not start"; exit 1; }
"$work/venv/bin/python" - "$url" <<'EOF'
import sys
import urllib.request

base = sys.argv[1].rstrip("/")
for path, must_hold in (("/", b"<video"), ("/app.js", b"RTCPeerConnection"), ("/sample-speech.wav", b"RIFF")):
    with urllib.request.urlopen(base + path, timeout=10) as response:
        body = response.read()
    assert response.status == 200 and must_hold in body, (path, response.status, body[:80])
print(f"check_wheel: avatar serve from the wheel answers / with the page ({base})")
EOF
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""

"$work/venv/bin/python" - "$work/speech.wav" <<'EOF'
import sys
import wave

import numpy as np

t = np.arange(16000) / 16000
audio = (0.3 * np.sin(2 * np.pi * 180 * t) * 32767).astype("<i2")
with wave.open(sys.argv[1], "wb") as file:
    file.setnchannels(1)
    file.setsampwidth(2)
    file.setframerate(16000)
    file.writeframes(audio.tobytes())
EOF
"$work/venv/bin/avatar" render --audio "$work/speech.wav" -o "$work/out.mp4" >"$work/render.log" 2>&1 || {
    cat "$work/render.log"
    echo "check_wheel: avatar render failed"
    exit 1
}
[ -s "$work/out.mp4" ] || { echo "check_wheel: avatar render wrote no mp4"; exit 1; }
echo "check_wheel: avatar render from the wheel wrote $(stat -c %s "$work/out.mp4") bytes of mp4"
