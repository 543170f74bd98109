"""Enrolling a person from one photo: an AU-driven expression synthesizer makes (AU, face) training pairs.

The synthesizer is the engine's instant warp renderer (``engine.avatar.warp``)
rendering the 128x128 crop the generator sees. Modules here: ``synthesizer``
(:class:`ExpressionSynthesizer`), ``au_sampler`` (training AU vectors),
``contact_sheet`` (a grid of renders to look at).
"""

from models.enroll.synthesizer import ExpressionSynthesizer

__all__ = ["ExpressionSynthesizer"]
