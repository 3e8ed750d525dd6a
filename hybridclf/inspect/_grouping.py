"""Duplicate pairs joined into groups, one group id per file.

Two ways, chosen by the ``linkage`` threshold:

- :func:`union_find_groups` joins pairs transitively (single linkage): one
  wrong link merges two families of copies;
- :func:`average_linkage_groups` merges two groups only when the files of one
  are, on average, duplicates of the files of the other: a duplicate pair
  counts 1, any other pair its :func:`affinity` (0 to 1, from the hash
  distance and the embedding similarity). One wrong link between two families
  of four copies weighs 1/16, so they stay apart; an original and its copies,
  each linked to the original and alike among themselves, stay together.

:func:`open_triangles` lists the pairs that share a partner but are not
linked, for the alignment check to confirm or refute before the linkage.
"""

import numpy as np

# the hash distance and embedding similarity at which two images count as
# unrelated; set on the OpenCV copies of amulet6 (benchmarks/bench_inspect.py):
# different amulets of one type differ in 14 or more bits and reach 0.8 of
# embedding similarity, while copies of one photo are mostly within 12 bits or
# over 0.85. Wider spans merged different amulets, narrower ones split copies.
_UNRELATED_HASH_BITS = 16
_UNRELATED_SIMILARITY = 0.7
# two groups merge while the mean affinity of their cross pairs is over this
MIN_MEAN_AFFINITY = 0.6


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
    for i, j, *_ in pairs:
        ri, rj = _root(parent, i), _root(parent, j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return _renumber([_root(parent, i) for i in range(n)])


def _root(parent, i):
    """The root of item ``i`` in the union-find forest ``parent``.

    ``parent[i]`` is the parent of item ``i`` (itself at a root); the path
    walked is halved on the way, so later look-ups are short.
    """
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def open_triangles(pairs, checked=()):
    """Pairs of items that share a partner in ``pairs`` but are not a pair.

    Parameters
    ----------
    pairs : iterable of (int, int)
        The linked pairs.

    checked : collection of (int, int), default=()
        Pairs ``(i, j)``, ``i < j``, to leave out (already checked).

    Returns
    -------
    pairs : list of (int, int)
        Sorted ``(i, j)`` with ``i < j``.
    """
    partners = {}
    for i, j in pairs:
        partners.setdefault(i, set()).add(j)
        partners.setdefault(j, set()).add(i)
    out = set()
    for others in partners.values():
        for a in others:
            out.update((a, b) for b in others
                       if a < b and b not in partners[a] and (a, b) not in checked)
    return sorted(out)


def _renumber(keys):
    """Ids 0, 1, ... in order of first appearance of each key."""
    ids, groups = {}, np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        groups[i] = ids.setdefault(key, len(ids))
    return groups


def affinity(index, hashes, embeddings, *, hash_distance, embedding_similarity):
    """How alike the files ``index`` are, pair by pair, short of being duplicates.

    Parameters
    ----------
    index : ndarray of int
        The files.

    hashes : ndarray of shape (n_files, k, 8), dtype uint64
        ``k`` perceptual hashes per file (grey, value channel), each under its
        8 flips and turns; rows of zeros are unknown.

    embeddings : ndarray of shape (n_files, n_dims) or None
        CNN embeddings (NaN rows unknown), or None.

    hash_distance, embedding_similarity : float
        The duplicate thresholds: at them the affinity is 1.

    Returns
    -------
    affinity : ndarray of shape (len(index), len(index))
        1 at the duplicate thresholds, 0 for unrelated images (16 bits of
        hash, 0.7 of embedding similarity), linear between; the larger of the
        two.
    """
    h = hashes[index]
    known = h.any(axis=(1, 2))
    # upright hash of each file against every variant of the other, per kind
    xor = h[:, None, :, :1] ^ h[None, :, :, :]
    dist = np.bitwise_count(xor).min(axis=(2, 3)).astype(np.float64)
    span = max(_UNRELATED_HASH_BITS - hash_distance, 1)
    out = np.clip((_UNRELATED_HASH_BITS - dist) / span, 0.0, 1.0)
    out[~known] = 0.0
    out[:, ~known] = 0.0
    if embeddings is not None:
        emb = np.nan_to_num(embeddings[index].astype(np.float64))
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        span = max(embedding_similarity - _UNRELATED_SIMILARITY, 1e-6)
        out = np.maximum(out, np.clip((emb @ emb.T - _UNRELATED_SIMILARITY) / span,
                                      0.0, 1.0))
    return out


def _merge_component(links, weights, min_mean):
    """Average-linkage clusters of one connected component; labels 0..k-1."""
    m = len(links)
    sums = weights.copy()
    linked = links.copy()
    sizes = np.ones(m)
    alive = np.ones(m, dtype=bool)
    labels = np.arange(m)
    while True:
        mean = sums / np.outer(sizes, sizes)
        mean[~(linked & alive[:, None] & alive[None, :])] = -1.0
        np.fill_diagonal(mean, -1.0)
        a, b = np.unravel_index(int(np.argmax(mean)), mean.shape)
        # strictly more than min_mean: an unrelated third file never joins a pair
        if mean[a, b] <= min_mean:
            return labels
        a, b = min(a, b), max(a, b)
        sums[a] += sums[b]
        sums[:, a] += sums[:, b]
        linked[a] |= linked[b]
        linked[:, a] |= linked[:, b]
        sizes[a] += sizes[b]
        alive[b] = False
        labels[labels == b] = a


def average_linkage_groups(n, pairs, affinity_of, *, min_mean=MIN_MEAN_AFFINITY):
    """Group ids from ``pairs`` by average linkage, numbered by first member.

    Parameters
    ----------
    n : int
        Number of items.

    pairs : iterable of tuple
        ``(i, j, ...)``: duplicate pairs; only linked groups are merged.

    affinity_of : callable
        ``affinity_of(index)`` returns the (m, m) affinity of the items
        ``index`` (see :func:`affinity`); duplicate pairs count 1 whatever it
        says.

    min_mean : float, default=0.6
        Two groups merge while the mean over all their cross pairs is over
        this.

    Returns
    -------
    groups : ndarray of shape (n,), dtype int64
        As :func:`union_find_groups`.
    """
    pairs = [(i, j) for i, j, *_ in pairs]
    component = union_find_groups(n, pairs)
    keys = [int(c) for c in component]
    for c in np.unique(component):
        index = np.flatnonzero(component == c)
        if len(index) < 3:
            # one pair, or one file: nothing to chain
            continue
        local = {int(g): k for k, g in enumerate(index)}
        links = np.zeros((len(index), len(index)), dtype=bool)
        for i, j in pairs:
            if i in local and j in local:
                links[local[i], local[j]] = links[local[j], local[i]] = True
        weights = np.where(links, 1.0, affinity_of(index))
        labels = _merge_component(links, weights, min_mean)
        for k, g in enumerate(index):
            # offset: the ids of the split parts never collide with components
            keys[g] = n + int(index[labels[k]])
    return _renumber(keys)


def weakest_links(groups, pairs):
    """The least sure pair holding each group together.

    The bottleneck of the group's maximum spanning tree over its duplicate
    pairs: the pair whose loss would split the group first.

    Returns
    -------
    weakest : dict of int to DuplicatePair
        Group id -> pair, for groups of two or more files.
    """
    order = sorted((p for p in pairs if groups[p.i] == groups[p.j]),
                   key=lambda p: -p.score)
    parent = list(range(len(groups)))
    weakest = {}
    for pair in order:
        ri, rj = _root(parent, pair.i), _root(parent, pair.j)
        if ri != rj:
            parent[ri] = rj
            # Kruskal adds edges strongest first: the last one added is weakest
            weakest[int(groups[pair.i])] = pair
    return weakest


def merge_hand_groups(found, hand):
    """The groups a person gave by hand, with the files they did not name added.

    The person's grouping wins for the files it names: those it puts
    together stay together, those it keeps apart stay apart, whatever the
    search found. The files it does not name (photos added since) keep the
    groups the search found among themselves, and such a group joins a hand
    group when the search put it with files of that hand group: the one
    that holds most of those files (the first in file order on a tie), so
    a new photo never merges two groups the person kept apart.

    Parameters
    ----------
    found : array-like of int
        The group the search found for each file.

    hand : sequence of hashable or None
        The group the person gave each file (any name), None for a file the
        person did not name.

    Returns
    -------
    groups : ndarray of shape (n_files,), dtype int64
        Group ids 0, 1, ... in order of each group's first file.
    """
    found = np.asarray(found).tolist()
    votes = {}
    for g, name in zip(found, hand):
        if name is not None:
            count = votes.setdefault(g, {})
            count[name] = count.get(name, 0) + 1
    # max keeps the first name of most votes: dicts keep the file order
    joins = {g: max(count, key=count.get) for g, count in votes.items()}
    keys = [("hand", name) if name is not None
            else ("hand", joins[g]) if g in joins else ("found", g)
            for g, name in zip(found, hand)]
    return _renumber(keys)
