"""The engine's audio time grid: 16 kHz samples, and log-mel hops of 25 ms windows every 10 ms.

Every session's audio clock counts samples at :data:`SAMPLE_RATE_HZ`; CAUSE
reads one log-mel hop and writes one AU estimate per :data:`HOP_SAMPLES`, so
AUs exist at :data:`HOP_RATE_HZ`. Hop ``t`` covers samples
``[t * HOP_SAMPLES, t * HOP_SAMPLES + WINDOW_SAMPLES)`` (:mod:`engine.audio.mel`).
"""

SAMPLE_RATE_HZ = 16_000
"""The engine's internal audio rate: every source is converted to it, and every session's audio clock counts it."""
HOP_SAMPLES = 160
"""Step between log-mel hops, in samples (10 ms)."""
WINDOW_SAMPLES = 400
"""Analysis window of one log-mel hop, in samples (25 ms)."""
HOP_RATE_HZ = SAMPLE_RATE_HZ // HOP_SAMPLES
"""Log-mel hops per second (100): the rate of CAUSE's input and output."""
HOP_MS = 1000.0 * HOP_SAMPLES / SAMPLE_RATE_HZ
WINDOW_MS = 1000.0 * WINDOW_SAMPLES / SAMPLE_RATE_HZ
