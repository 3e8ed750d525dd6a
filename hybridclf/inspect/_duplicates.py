"""The duplicate search: which files are copies of which, and their groups.

:func:`~._evidence.duplicate_pairs` finds the duplicate pairs;
:func:`search_duplicates` joins them into groups and lists the near misses;
:func:`find_duplicate_groups` runs the whole search on a list of files.
"""

import dataclasses
import os
from functools import partial

import numpy as np

from ._alignment import aligned_pairs
from ._docs import fill_doc
from ._evidence import duplicate_pairs, hash_matrix
from ._grouping import (
    affinity,
    average_linkage_groups,
    merge_hand_groups,
    union_find_groups,
    weakest_links,
)
from ._scan import scan_files
from ._scan_cache import ScanCache
from ._thresholds import check_hash_distance, check_linkage, check_similarity

# input side of the CNN used for duplicate and outlier checks: 128 pixels run
# twice as fast as 224 and rank the near-identical amulet6 photos alike
CNN_SIZE = 128
_MAX_NEAR_MISSES = 50


def embed(images, n_jobs, progress=False):
    """CNN embeddings of the kept ``images``; NaN rows where an image is None."""
    from ..features import CNNFeatures

    index = [i for i, image in enumerate(images) if image is not None]
    if not index:
        return None
    # the thresholds above were tuned on this network: it stays whatever the
    # classification default becomes
    cnn = CNNFeatures(backbone="efficientnet_lite0", layer="head",
                      image_size=CNN_SIZE, flip_tta=False, device="cpu",
                      n_jobs=n_jobs, verbose=progress)
    stacked = np.stack([images[i] for i in index])
    emb = cnn.fit(stacked[:1]).transform(stacked)
    out = np.full((len(images), emb.shape[1]), np.nan, dtype=np.float32)
    out[index] = emb
    return out


@dataclasses.dataclass
class DuplicateSearch:
    """What the duplicate search found.

    ``pairs`` are the duplicate pairs (the strongest evidence each),
    ``groups`` the group id of each file, ``weakest`` the least sure pair of
    each group (see :func:`~._grouping.weakest_links`), ``near_misses``
    the pairs just under a threshold, or linked but kept apart by the
    linkage, for a person to merge by hand (most alike first), and
    ``kept_apart`` the pairs found alike (duplicates or near misses) whose
    files a groups CSV puts in different groups: the person's decision,
    listed apart from the near misses (:func:`apply_hand_groups`).
    """

    pairs: list
    groups: np.ndarray
    weakest: dict
    near_misses: list
    kept_apart: list = dataclasses.field(default_factory=list)


def search_duplicates(records, embeddings, t, align=aligned_pairs):
    """The duplicate pairs of ``records``, their groups and the near misses.

    ``t`` carries ``hash_distance``, ``rotations``, ``embedding_similarity``
    (None without embeddings), ``aligned_similarity`` and ``linkage``;
    ``align`` is as in :func:`duplicate_pairs`.

    Returns
    -------
    search : DuplicateSearch
    """
    pairs, near = duplicate_pairs(records, embeddings, t, align)
    n = len(records)
    if t.linkage == "single":
        groups = union_find_groups(n, [(p.i, p.j) for p in pairs])
    else:
        hashes = hash_matrix(records)
        groups = average_linkage_groups(n, [(p.i, p.j) for p in pairs], partial(
            affinity, hashes=hashes, embeddings=embeddings,
            hash_distance=t.hash_distance,
            embedding_similarity=t.embedding_similarity or 1.0))
    # linked, but not close enough to the rest of the group
    kept_apart = [dataclasses.replace(p, evidence=f"{p.evidence}, but not close to "
                                      "the other group as a whole")
                  for p in pairs if groups[p.i] != groups[p.j]]
    near = [p for p in near if groups[p.i] != groups[p.j]]
    best = {}
    for pair in sorted(kept_apart + near, key=lambda p: -p.score):
        best.setdefault((pair.i, pair.j), pair)
    # all of them: a groups CSV may decide the first ones (apply_hand_groups)
    # before the lists are cut to length (shortlist)
    near_misses = sorted(best.values(), key=lambda p: -p.score)
    return DuplicateSearch(pairs=[p for p in pairs if groups[p.i] == groups[p.j]],
                           groups=groups, weakest=weakest_links(groups, pairs),
                           near_misses=near_misses)


def join_known_copies(search, copies):
    """``search`` with each known copy put in the group of its source.

    Parameters
    ----------
    search : DuplicateSearch
        What the search found.

    copies : list of DuplicatePair
        Pairs known to be copies whatever their pixels say (the
        ``manifest.csv`` of ``hybridclf augment``), with their evidence.

    Returns
    -------
    search : DuplicateSearch
        The groups joined (numbered again by first member), the pairs,
        weakest links and near misses updated.
    """
    if not copies:
        return search
    groups = search.groups
    first = {}
    links = [(i, first.setdefault(int(g), i)) for i, g in enumerate(groups.tolist())]
    groups = union_find_groups(len(groups), links + [(p.i, p.j) for p in copies])
    known = {(p.i, p.j) for p in search.pairs}
    pairs = search.pairs + [p for p in copies if (p.i, p.j) not in known]
    return DuplicateSearch(
        pairs=pairs, groups=groups, weakest=weakest_links(groups, pairs),
        near_misses=[p for p in search.near_misses if groups[p.i] != groups[p.j]],
        kept_apart=search.kept_apart)


def apply_hand_groups(search, hand):
    """``search`` with the groups a person gave by hand (``inspect --groups``).

    Two files that the groups CSV names and puts in different groups are
    the person's decision: the pairs of such files that the search finds
    alike (a near miss, or a duplicate pair the person split) move to
    ``kept_apart``, so that the near misses are those still to decide
    (with a file the CSV does not name), not the same list every run.

    Parameters
    ----------
    search : DuplicateSearch
        What the search found.

    hand : sequence of str or None
        The group a groups CSV gives each file, None where it names none
        (:func:`~hybridclf.io._groups_csv.read_group_names`).

    Returns
    -------
    search : DuplicateSearch
        The groups of :func:`~._grouping.merge_hand_groups`; the pairs and
        weakest links of the files kept together, the near misses between
        groups that involve a file the CSV does not name, and the pairs it
        keeps apart, most alike first.
    """
    groups = merge_hand_groups(search.groups, hand)
    pairs = [p for p in search.pairs if groups[p.i] == groups[p.j]]

    def decided(p):
        return (hand[p.i] is not None and hand[p.j] is not None
                and hand[p.i] != hand[p.j])

    best = {}
    for p in sorted(search.pairs + search.near_misses + search.kept_apart,
                    key=lambda p: -p.score):
        if decided(p):
            best.setdefault((p.i, p.j), p)
    return DuplicateSearch(
        pairs=pairs, groups=groups, weakest=weakest_links(groups, pairs),
        near_misses=[p for p in search.near_misses
                     if groups[p.i] != groups[p.j] and not decided(p)],
        kept_apart=list(best.values()))


def shortlist(search):
    """``search`` with its near misses and kept-apart pairs cut to length.

    The report shows the first 50 of each (most alike first); they are cut
    only once a groups CSV has decided its pairs, so that the pairs it
    decides make room for the next near misses.
    """
    return dataclasses.replace(search,
                               near_misses=search.near_misses[:_MAX_NEAR_MISSES],
                               kept_apart=search.kept_apart[:_MAX_NEAR_MISSES])


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """The settings of one duplicate search (see :func:`search_duplicates`)."""

    hash_distance: int
    rotations: bool
    embedding_similarity: float | None
    aligned_similarity: float | None
    linkage: str
    n_jobs: int | None = None


@fill_doc
def find_duplicate_groups(
    paths, *, hash_distance=6, rotations=True, embedding_similarity=None,
    aligned_similarity=0.93, linkage="average", n_jobs=None, progress=False,
    cache_dir=None,
):
    """Group image files that are exact or near duplicates of each other.

    Two files are duplicates when any of these holds:

    - their bytes are identical (SHA-256), or their decoded pixels are;
    - their perceptual hashes differ in at most ``hash_distance`` of 64 bits.
      The hash is taken on the histogram-equalised grey image, so re-encoded,
      resized, greyscale, brighter or darker copies match; each image is also
      compared with the mirror image (and, with ``rotations``, quarter turns)
      of the other;
    - with ``embedding_similarity`` set, the cosine similarity of their CNN
      embeddings (EfficientNet-Lite0, see
      :class:`~hybridclf.features.CNNFeatures`) is at least that value;
    - with ``aligned_similarity`` set, pairs that are close but not close
      enough (hash distance up to 12 bits; with ``embedding_similarity`` set
      also an embedding similarity from 0.85, or one of each file's 5
      nearest neighbours by embedding) are aligned: a rotation, scale and
      shift is fitted to matched ORB features, and the aligned grey pixels,
      as they are or slightly blurred, must correlate at
      ``aligned_similarity`` or more (blurred: 0.02 more; a pair whose
      value-channel hashes are the closer is also tried on the value
      channel, 0.02 more). This catches crops, small rotations, blurred,
      rescaled and hue-shifted copies, which move the hash, while different
      photos of similar objects fail it. Two files that share a duplicate
      are aligned too, so a family of copies is linked pair by pair; and
      with ``embedding_similarity`` set, a hash match between files whose
      embeddings are under 0.6 counts only if it aligns.

    Files that cannot be decoded are matched by their bytes only. The pairs
    are then joined into groups as ``linkage`` says.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        The image files.

    {hash_distance}

    {rotations}

    embedding_similarity : float or None, default=None
        Smallest cosine similarity of CNN embeddings for a near-duplicate
        pair; ``None`` skips the CNN (faster, and no PyTorch needed). 0.95 is
        a reasonable value.

    {aligned_similarity}

    {linkage}

    {n_jobs}

    {progress}

    cache_dir : str, os.PathLike or None, default=None
        A folder where each file's measures and hashes and the aligned pairs
        are kept, under the file's content (:mod:`._scan_cache`): a second
        search after a few files were added decodes only those. Not used
        with ``embedding_similarity``. None keeps nothing.

    Returns
    -------
    groups : ndarray of shape (n_files,), dtype int64
        Group id of each file, numbered 0, 1, ... in order of each group's
        first file; a file without duplicates has an id of its own. Pass it as
        ``groups`` to :class:`~sklearn.model_selection.StratifiedGroupKFold`.

    See Also
    --------
    hybridclf.inspect_dataset : Every check on a dataset folder, duplicates
        included.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from PIL import Image
    >>> from hybridclf import find_duplicate_groups
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    >>> b = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    >>> Image.fromarray(a).save(root / "a.png")
    >>> Image.fromarray(a[:, ::-1]).save(root / "a_mirrored.png")
    >>> Image.fromarray(b).save(root / "b.png")
    >>> find_duplicate_groups([root / "a.png", root / "a_mirrored.png",
    ...                        root / "b.png"])
    array([0, 0, 1])
    """
    paths = [os.fspath(p) for p in paths]
    owner = "find_duplicate_groups"
    check_hash_distance(hash_distance, owner)
    check_similarity("embedding_similarity", embedding_similarity, owner)
    check_similarity("aligned_similarity", aligned_similarity, owner)
    check_linkage(linkage, owner)
    keep = CNN_SIZE if embedding_similarity is not None else None
    settings = SearchSettings(hash_distance, rotations, embedding_similarity,
                              aligned_similarity, linkage, n_jobs)
    if cache_dir is not None and keep is None:
        cache = ScanCache(cache_dir)
        records = cache.scan_files(paths, n_jobs=n_jobs, progress=progress)
        return search_duplicates(records, None, settings,
                                 cache.aligned_pairs).groups
    records, images = scan_files(paths, n_jobs=n_jobs, keep_size=keep,
                                 progress=progress)
    embeddings = embed(images, n_jobs, progress) if keep is not None else None
    return search_duplicates(records, embeddings, settings).groups
