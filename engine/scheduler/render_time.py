"""How long a batch takes to render, learnt from the batches rendered so far.

The scheduler uses the estimate to start a batch early enough to end by its
earliest deadline. Cost depends on the batch size (linearly on a CPU, far less
on a GPU), so each size keeps its own average.
"""


class RenderTimeEstimator:
    """An exponential moving average of measured render times, one per batch size.

    Sizes not measured yet are estimated from measured ones, erring long (an
    early start costs a little batching; a late one misses deadlines):

    - a smaller size takes the estimate of the nearest measured larger size
      (a batch never gets cheaper by growing);
    - a larger size scales the largest measured size linearly (per-frame cost
      does not grow with the batch: linear is an upper bound);
    - with nothing measured, the estimate is 0 s.
    """

    def __init__(self, *, smoothing: float = 0.2) -> None:
        """``smoothing``: weight of a new measurement, in (0, 1]; 1 keeps only the latest."""
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.smoothing = smoothing
        self._mean_s: dict[int, float] = {}

    def observe(self, batch_size: int, duration_s: float) -> None:
        """Fold in one measured batch: ``batch_size`` frames rendered in ``duration_s`` seconds."""
        previous = self._mean_s.get(batch_size)
        if previous is None:
            self._mean_s[batch_size] = duration_s
        else:
            self._mean_s[batch_size] = previous + self.smoothing * (duration_s - previous)

    def estimate_s(self, batch_size: int) -> float:
        """Expected seconds to render ``batch_size`` frames (see the class docstring for unmeasured sizes)."""
        if batch_size in self._mean_s:
            return self._mean_s[batch_size]
        larger = [size for size in self._mean_s if size > batch_size]
        if larger:
            return self._mean_s[min(larger)]
        if not self._mean_s:
            return 0.0
        largest = max(self._mean_s)
        return self._mean_s[largest] * batch_size / largest
