"""The duplicate search: which files are copies of which, and their groups.

:func:`duplicate_pairs` gathers the evidence of :mod:`._pairs` (exact, hash,
embedding, alignment) into one :class:`~._pairs.DuplicatePair` per pair;
:func:`find_duplicate_groups` runs the whole search on a list of files.
"""

import logging
import os

import numpy as np

from ._docs import fill_doc
from ._grouping import union_find_groups
from ._pairs import (
    DuplicatePair,
    aligned_pairs,
    embedding_pairs,
    exact_pairs,
    hash_pairs,
)
from ._scan import scan_files
from ._thresholds import check_hash_distance, check_similarity

logger = logging.getLogger(__name__)

# input side of the CNN used for duplicate and outlier checks: 128 pixels run
# twice as fast as 224 and rank the near-identical amulet6 photos alike
CNN_SIZE = 128
# pairs this close are checked by alignment (aligned_similarity): a perceptual
# hash distance (upright or mirrored) of at most 12 bits, or an embedding
# similarity of 0.85; wider nets cost seconds of alignment on amulet6
CANDIDATE_HASH_DISTANCE = 12
_CANDIDATE_SIMILARITY = 0.85


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


def _hash_matrix(records):
    hashes = np.zeros((len(records), 8), dtype=np.uint64)
    for i, rec in enumerate(records):
        if rec.phash is not None:
            hashes[i] = rec.phash
    return hashes


def duplicate_pairs(records, embeddings, *, hash_distance, rotations,
                    embedding_similarity, aligned_similarity):
    """Every duplicate pair of the scanned files, the strongest evidence each.

    Returns
    -------
    pairs : list of DuplicatePair
        Sorted by ``(i, j)``; exact evidence wins over near evidence.
    """
    pairs = [DuplicatePair(i, j, how, 1.0) for i, j, how in exact_pairs(records)]
    hashes = _hash_matrix(records)
    pairs += [DuplicatePair(i, j, "perceptual hash", 1.0 - d / 64.0)
              for i, j, d in hash_pairs(hashes, hash_distance, rotations=rotations)]
    candidates = set()
    if aligned_similarity is not None and CANDIDATE_HASH_DISTANCE > hash_distance:
        candidates.update(
            (i, j) for i, j, d in hash_pairs(hashes, CANDIDATE_HASH_DISTANCE,
                                             rotations=False)
            if d > hash_distance)
    if embeddings is not None and embedding_similarity is not None:
        reach = embedding_similarity
        if aligned_similarity is not None:
            reach = min(embedding_similarity, _CANDIDATE_SIMILARITY)
        for i, j, s in embedding_pairs(embeddings, reach):
            if s >= embedding_similarity:
                pairs.append(DuplicatePair(i, j, "CNN embedding", s))
            else:
                candidates.add((i, j))
    if aligned_similarity is not None and candidates:
        # pairs already joined, directly or through others, need no check
        joined = union_find_groups(len(records), [(p.i, p.j) for p in pairs])
        todo = sorted((i, j) for i, j in candidates if joined[i] != joined[j])
        logger.info("Aligning %d candidate pairs", len(todo))
        pairs += [DuplicatePair(i, j, "aligned pixels", s)
                  for i, j, s in aligned_pairs(records, todo, aligned_similarity)]
    best = {}
    for pair in pairs:
        best.setdefault((pair.i, pair.j), pair)
    return sorted(best.values(), key=lambda p: (p.i, p.j))


@fill_doc
def find_duplicate_groups(
    paths, *, hash_distance=6, rotations=True, embedding_similarity=None,
    aligned_similarity=0.93, n_jobs=None, progress=False,
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
      enough (hash distance up to 12 bits, or embedding similarity from 0.85)
      are aligned (the embedding only with ``embedding_similarity`` set): a
      rotation, scale and shift is fitted to matched ORB
      features, and the aligned grey pixels must correlate at
      ``aligned_similarity`` or more. This catches crops, small rotations and
      rescaled copies, which move the hash, while different photos of similar
      objects fail it.

    Pairs are joined transitively (union-find): if A matches B and B matches
    C, all three share a group. Files that cannot be decoded are matched by
    their bytes only.

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

    {n_jobs}

    {progress}

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
    keep = CNN_SIZE if embedding_similarity is not None else None
    records, images = scan_files(paths, n_jobs=n_jobs, keep_size=keep,
                                 progress=progress)
    embeddings = embed(images, n_jobs, progress) if keep is not None else None
    pairs = duplicate_pairs(records, embeddings, hash_distance=hash_distance,
                            rotations=rotations,
                            embedding_similarity=embedding_similarity,
                            aligned_similarity=aligned_similarity)
    return union_find_groups(len(paths), [(p.i, p.j) for p in pairs])
