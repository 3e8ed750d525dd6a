"""Bag of visual words over SIFT (or ORB) local descriptors."""

from numbers import Integral, Real

import cv2
import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.utils import check_random_state

from ..utils._docstrings import (
    Substitution,
    _image_shape_docstring,
    _n_jobs_extract_docstring,
)
from ..utils._parallel import run_chunked
from ..utils._validation import Interval, StrOptions
from ._base import ImageFeatureExtractor, to_gray


@Substitution(n_jobs=_n_jobs_extract_docstring, image_shape=_image_shape_docstring)
class SIFTBoVW(ImageFeatureExtractor):
    """Bag-of-visual-words histogram of SIFT or ORB local descriptors.

    ``fit`` extracts local descriptors from the images, samples at most
    ``max_descriptors`` of them and clusters them with mini-batch k-means into
    ``n_words`` visual words (the codebook). ``transform`` assigns each
    descriptor of an image to its nearest word and returns the histogram of
    words, normalised to sum to 1 (all zeros for an image without keypoints).

    Parameters
    ----------
    n_words : int, default=256
        Size of the visual vocabulary, the length of the output.

    descriptor : {{"sift", "orb"}}, default="sift"
        The local descriptor:

        - "sift": OpenCV's SIFT, 128 floats, scale and rotation invariant.
        - "orb": OpenCV's ORB, 256 binary tests; faster, less accurate. Its
          bits are clustered as 0/1 floats (Euclidean = Hamming distance).

    keypoints : {{"dense", "detect"}}, default="dense"
        Where descriptors are taken:

        - "dense": on a regular grid every ``dense_step`` pixels, each
          describing a square of ``patch_size`` pixels; every image gets the
          same number, so smooth objects are described too.
        - "detect": at the detector's ``max_keypoints`` strongest keypoints.

    dense_step : int, default=8
        Grid spacing in pixels for ``keypoints="dense"``.

    patch_size : float, default=24.0
        Side in pixels of the square each dense descriptor describes. (SIFT
        describes about 6 times its keypoint size; the keypoints get
        ``patch_size / 6``.) Larger patches cost more: on 224x224 photos, 96
        pixels take 3 times as long as 24 and were no more accurate.

    max_keypoints : int, default=500
        Most keypoints kept per image with ``keypoints="detect"``.

    root_sift : bool, default=True
        Use RootSIFT: L1-normalise each SIFT descriptor and take the square
        root, so Euclidean distance compares them like the Hellinger kernel.
        Ignored for ORB.

    max_descriptors : int, default=50000
        Most descriptors sampled (uniformly at random) to learn the codebook.

    image_size : int or None, default=None
        Resize the greyscale image to ``image_size`` x ``image_size`` first;
        ``None`` keeps the input size.

    random_state : int, RandomState instance or None, default=None
        Seeds the descriptor sample and k-means. Pass an int for the same
        codebook on every fit.

    {n_jobs}

    Attributes
    ----------
    codebook_ : ndarray of shape (n_words, n_dims), dtype float32
        The visual words (cluster centres) in descriptor space.

    {image_shape}

    n_features_out_ : int
        Equal to ``n_words``.

    References
    ----------
    .. [1] D. G. Lowe, "Distinctive image features from scale-invariant
       keypoints", IJCV 60(2), 2004. :doi:`10.1023/B:VISI.0000029664.99615.94`
    .. [2] R. Arandjelovic and A. Zisserman, "Three things everyone should know
       to improve object retrieval", CVPR 2012.
       :doi:`10.1109/CVPR.2012.6248018`

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.features import SIFTBoVW
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3), np.uint8)
    >>> bovw = SIFTBoVW(n_words=8, random_state=0).fit(images)
    >>> bovw.transform(images).shape
    (4, 8)
    """

    _parameter_constraints: dict = {
        **ImageFeatureExtractor._parameter_constraints,
        "n_words": [Interval(Integral, 1, None, closed="left")],
        "descriptor": [StrOptions({"sift", "orb"})],
        "keypoints": [StrOptions({"dense", "detect"})],
        "dense_step": [Interval(Integral, 1, None, closed="left")],
        "patch_size": [Interval(Real, 0, None, closed="neither")],
        "max_keypoints": [Interval(Integral, 1, None, closed="left")],
        "root_sift": ["boolean"],
        "max_descriptors": [Interval(Integral, 1, None, closed="left")],
        "image_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self, *, n_words=256, descriptor="sift", keypoints="dense", dense_step=8,
        patch_size=24.0, max_keypoints=500, root_sift=True, max_descriptors=50_000,
        image_size=None, random_state=None, n_jobs=None,
    ):
        self.n_words = n_words
        self.descriptor = descriptor
        self.keypoints = keypoints
        self.dense_step = dense_step
        self.patch_size = patch_size
        self.max_keypoints = max_keypoints
        self.root_sift = root_sift
        self.max_descriptors = max_descriptors
        self.image_size = image_size
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _n_features_for(self, *image_size):
        return self.n_words  # whatever the image size

    # -- descriptors ---------------------------------------------------------
    def _extractor(self):
        if self.descriptor == "sift":
            n = 0 if self.keypoints == "dense" else self.max_keypoints
            return cv2.SIFT_create(nfeatures=n)
        return cv2.ORB_create(nfeatures=self.max_keypoints, edgeThreshold=15,
                              patchSize=15)

    def _describe(self, extractor, image):
        """Descriptors of one image as float32 (n, n_dims); n may be 0."""
        gray = to_gray(image)
        if self.image_size is not None:
            gray = cv2.resize(gray, (self.image_size, self.image_size),
                              interpolation=cv2.INTER_AREA)
        if self.keypoints == "dense":
            h, w = gray.shape
            half = self.dense_step / 2
            size = float(self.patch_size) / 6.0
            kps = [
                cv2.KeyPoint(float(x), float(y), size)
                for y in np.arange(half, h, self.dense_step)
                for x in np.arange(half, w, self.dense_step)
            ]
            # an image smaller than the grid has no keypoint; OpenCV's SIFT
            # raises an opaque C++ error on an empty list for tiny images
            desc = extractor.compute(gray, kps)[1] if kps else None
        else:
            kps, desc = extractor.detectAndCompute(gray, None)
        n_dims = 128 if self.descriptor == "sift" else 256
        if desc is None or len(desc) == 0:
            return np.empty((0, n_dims), dtype=np.float32)
        if self.descriptor == "orb":
            return np.unpackbits(desc, axis=1).astype(np.float32)
        desc = desc.astype(np.float32)
        if self.root_sift:
            desc /= desc.sum(axis=1, keepdims=True) + 1e-7
            np.sqrt(desc, out=desc)
        return desc

    def _describe_all(self, X):
        def work(sl):
            extractor = self._extractor()  # OpenCV objects are not shared
            return [self._describe(extractor, img) for img in X[sl]]

        return [d for part in run_chunked(work, X.shape[0], self.n_jobs) for d in part]

    # -- codebook ------------------------------------------------------------
    def _learn_codebook(self, descriptors):
        rng = check_random_state(self.random_state)
        pool = np.concatenate(descriptors)
        if len(pool) < self.n_words:
            fix = ("keypoints='dense'" if self.keypoints == "detect" else
                   f"a dense_step under {self.dense_step}")
            raise ValueError(
                f"SIFTBoVW found {len(pool)} local descriptors in {len(descriptors)}"
                f" images, fewer than n_words={self.n_words}. Use fewer words, more"
                f" or larger images, or {fix}."
            )
        if len(pool) > self.max_descriptors:
            pool = pool[rng.choice(len(pool), self.max_descriptors, replace=False)]
        # k-means++ seeded on a small sample: on 25k SIFT descriptors this is
        # 50x faster than scikit-learn's default init for 2% more inertia
        kmeans = MiniBatchKMeans(
            n_clusters=self.n_words,
            n_init=1,
            init_size=min(len(pool), 4 * self.n_words),
            batch_size=2048,
            random_state=rng.randint(np.iinfo(np.int32).max),
        ).fit(pool)
        self.codebook_ = kmeans.cluster_centers_.astype(np.float32)
        self._codebook_sqnorm = (self.codebook_**2).sum(axis=1)

    def _encode(self, descriptors, out):
        for i, desc in enumerate(descriptors):
            if len(desc) == 0:
                out[i] = 0.0
                continue
            # nearest word by ||d - c||^2 = ||d||^2 - 2 d.c + ||c||^2 (one GEMM)
            dist = self._codebook_sqnorm - 2.0 * (desc @ self.codebook_.T)
            words = dist.argmin(axis=1)
            out[i] = np.bincount(words, minlength=self.n_words) / len(desc)

    def _fit(self, X):
        # the descriptors serve both the codebook and the features of X
        descriptors = self._describe_all(X)
        self._learn_codebook(descriptors)
        out = np.empty((len(descriptors), self.n_words), dtype=np.float32)
        self._encode(descriptors, out)
        return out

    def _transform_chunk(self, images, out):
        extractor = self._extractor()
        self._encode([self._describe(extractor, img) for img in images], out)
