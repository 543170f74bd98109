"""Where frames go besides a live peer: files (:mod:`engine.output.mp4`), and avatar apps, each an
:class:`engine.live.outputs.AUOutput`: VMC over OSC (:mod:`engine.output.vmc`), VTube Studio's plugin API
(:mod:`engine.output.vtube_studio`), Live Link Face UDP (:mod:`engine.output.livelink`), sending only to
destinations the operator allowed (:mod:`engine.output.destinations`). The app outputs are imported from
their modules, so that a missing optional package only matters to the output that needs it."""

from engine.output.mp4 import Mp4Writer

__all__ = ["Mp4Writer"]
