"""The one line every benchmark prints per figure (``python bench/NAME.py`` puts this
folder on ``sys.path``, so the scripts import it as ``figures``)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def figure(
    name: str, runs: Sequence[float], baseline: float, unit: str, *, digits: str = ".4g"
) -> None:
    """``NAME: measured=V UNIT baseline=V UNIT ratio=R min=V max=V``: the median of
    ``runs`` against ``baseline`` (measured in the same run), then the runs' min and max."""
    measured = statistics.median(runs)
    ratio = measured / baseline if baseline else math.inf
    print(
        f"{name}: measured={measured:{digits}} {unit} baseline={baseline:{digits}} {unit} "
        f"ratio={ratio:.3f} min={min(runs):{digits}} max={max(runs):{digits}}",
        flush=True,
    )
