"""Image pre/post-processing ops: CUDA sources and launchers beside their numpy references.

``reference`` holds the numpy reference of each op (also the CPU path) and
``geometry`` the crop box they share with ``engine.avatar``. Nothing here
imports ``engine``.
"""
