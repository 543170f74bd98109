"""The web page's latency meter (clients/web/avatar_web/measure.js), run in Node on frames as Chromium gives them.

The page pairs each frame Chromium presents with the server's trace of it by
RTP timestamp: the server's pts plus the sender's random offset, exactly
(engine/output/video_encoder.py keeps the pts a frame was stamped with on the
wire). Repeated pictures carry no trace and must stay unpaired.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

MEASURE_JS = Path(__file__).resolve().parents[2] / "clients" / "web" / "avatar_web" / "measure.js"
FRAME_TICKS = 3600  # 25 fps on the 90 kHz clock
OFFSET = 3_885_808_162  # a random RTP offset, as a sender picks one

SCRIPT = """
import { LatencyMeter } from %(module)s;
const meter = new LatencyMeter();
const traces = [];
for (let i = 0; i < 40; i += 1) {
  traces.push({ pts: 1000 + %(ticks)d * i, shown_sample: 640 * i, due_sample: 640 * i + 560,
                audio_arrival_s: 0.04 * i, send_s: 0.04 * i + 0.02 });
}
const now = performance.now();
const present = (rtp) => meter.onPresented({ rtpTimestamp: rtp >>> 0, presentationTime: now,
                                             expectedDisplayTime: now, receiveTime: now });
// Chromium's view: every fresh frame, and repeats (no trace) halfway between fresh frames.
traces.forEach((trace, i) => {
  present(trace.pts + %(offset)d);
  if (i %% 8 === 0) present(trace.pts + %(offset)d + %(ticks)d / 2);
});
meter.onStats({ frames: traces, speech_onsets: [] });
console.log(JSON.stringify(meter.pairs.map((pair) => [pair.rtp, pair.trace.pts])));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed (apt-get install nodejs)")
def test_every_fresh_frame_is_paired_with_its_own_trace_and_repeats_are_not() -> None:
    script = SCRIPT % {"module": json.dumps(MEASURE_JS.as_uri()), "ticks": FRAME_TICKS, "offset": OFFSET}
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    pairs = json.loads(done.stdout)
    assert len(pairs) == 40
    for rtp, pts in pairs:
        assert (rtp - OFFSET) % 2**32 == pts
