"""The instant renderer: a face animated by moving its own landmarks, no training.

Modules: ``displacements`` (the AU -> landmark motion table), ``mesh`` (the
piecewise-affine warp), ``masks`` and ``fills`` (mouth interior, eyelids).
The 68-point layout and the landmark detector live one level up
(``engine.avatar.face68``, ``engine.avatar.landmarks``): every avatar has them.
"""
