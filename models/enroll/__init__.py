"""Enrolling a person from one photo: an AU-driven expression synthesizer makes (AU, face) training pairs.

Modules: ``landmarks`` (dlib 68 points), ``face68`` (the point layout and face
frame), ``displacements`` (the AU -> landmark motion table), ``warp``
(piecewise-affine warp), ``masks`` and ``fills`` (mouth interior, eyelids),
``au_sampler`` (training AU vectors), ``synthesizer`` (all of it behind
:class:`ExpressionSynthesizer`), ``contact_sheet`` (a grid of renders to look at).
"""

from models.enroll.synthesizer import ExpressionSynthesizer

__all__ = ["ExpressionSynthesizer"]
