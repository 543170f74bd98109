"""Where a live session's frames go, each output an adapter on :mod:`engine.live.outputs`.

- Video: WebRTC tracks, paced and stamped from the wall clock (:mod:`engine.output.tracks`,
  shared by the server and the WHIP publisher), a virtual camera (:mod:`engine.output.virtual_camera`),
  WHIP publishing (:mod:`engine.output.whip_publisher`), mp4 files (:mod:`engine.output.mp4`).
- AUs for avatar apps: VMC over OSC (:mod:`engine.output.vmc`), VTube Studio's plugin API
  (:mod:`engine.output.vtube_studio`), Live Link Face UDP (:mod:`engine.output.livelink`), sending
  only to destinations the operator allowed (:mod:`engine.output.destinations`).

Outputs are imported from their modules, so that a missing optional package only matters to the
output that needs it.
"""

from engine.output.mp4 import Mp4Writer

__all__ = ["Mp4Writer"]
