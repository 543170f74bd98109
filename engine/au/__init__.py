"""The action unit vocabulary and per-frame AU post-processing."""

from engine.au.expression import ExpressionControl
from engine.au.vocabulary import AU_MAX_INTENSITY, AU_NAMES, N_AUS, au_index

__all__ = ["AU_MAX_INTENSITY", "AU_NAMES", "ExpressionControl", "N_AUS", "au_index"]
