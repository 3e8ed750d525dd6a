"""Duplicate pairs joined into groups, one group id per file."""

import numpy as np


def union_find_groups(n, pairs):
    """Group ids for ``n`` items joined by ``pairs``, numbered by first member.

    Parameters
    ----------
    n : int
        Number of items.

    pairs : iterable of tuple
        ``(i, j, ...)``: items ``i`` and ``j`` belong to one group.

    Returns
    -------
    groups : ndarray of shape (n,), dtype int64
        Group id of each item, 0, 1, ... in order of each group's first item;
        an item without pairs has a group of its own.
    """
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, *_ in pairs:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    ids, groups = {}, np.empty(n, dtype=np.int64)
    for i in range(n):
        groups[i] = ids.setdefault(find(i), len(ids))
    return groups
