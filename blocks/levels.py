"""The geometry of a network's levels: their sizes and the smallest input they allow, one function per rule.

Level ``i`` of a network is at ``1 / reduction`` of its input, its size rounded up in each
dimension (a stride-``s`` conv with 'same' padding maps ``n`` to ``ceil(n / s)``). Every network
reads its level sizes (`scaled_size`, `level_sizes`) and its minimum input (`min_size`) here.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["level_sizes", "min_size", "scaled_size"]


def scaled_size(size: Sequence[int], factor: int) -> tuple[int, ...]:
    """``ceil(n / factor)`` for each side: the size of a map at ``1 / factor`` of an input.

    `blocks.decoder` calls it at run time on a traced input's size, as a leaf of fx traces.

    Examples:
        >>> scaled_size((97, 64), 4)
        (25, 16)
    """
    return tuple(-(-n // factor) for n in size)


def level_sizes(size: Sequence[int], levels: int) -> list[tuple[int, ...]]:
    """The size of each of ``levels`` levels: level 0 is ``size``, each next one ``ceil(n / 2)`` per side.

    Examples:
        >>> level_sizes((97, 8), 3)
        [(97, 8), (49, 4), (25, 2)]
    """
    sizes = [tuple(size)]
    for _ in range(levels - 1):
        sizes.append(scaled_size(sizes[-1], 2))
    return sizes


def min_size(reduction: int) -> int:
    """The smallest side that leaves more than one pixel at ``1 / reduction``: ``reduction + 1``.

    Normalization needs more than one value, so a network's deepest level must be larger than one
    pixel in at least one dimension; ``ceil(n / r) > 1`` exactly when ``n > r``.

    Examples:
        >>> min_size(16)
        17
    """
    return reduction + 1
