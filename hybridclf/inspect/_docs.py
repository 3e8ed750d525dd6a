"""Docstring text shared by the inspector's public functions, written once.

:func:`fill_doc` replaces ``{name}`` fields of a docstring with the entries of
:data:`DOCS`, as imbalanced-learn's ``Substitution`` decorator does, so a
parameter is described in one place.
"""

import textwrap

DOCS = {
    "hash_distance": """hash_distance : int, default=6
    Largest Hamming distance (of 64 bits) between the perceptual hashes of
    near duplicates. On the somdej photos, true pairs differ in at most 4
    bits and different photos of the same amulet type in 14 or more.""",
    "rotations": """rotations : bool, default=True
    Also match copies turned by 90, 180 or 270 degrees.""",
    "aligned_similarity": """aligned_similarity : float or None, default=0.93
    Smallest similarity of the equalised grey pixels of a candidate pair
    after geometric alignment: their correlation, or their correlation after
    a slight blur less 0.02, whichever is larger. A pair that fails and whose
    value-channel hashes are the closer (a hue shift) is aligned again on
    the value channel (max of R, G, B), less 0.02. ``None`` skips the
    alignment check. Crops, small rotations and blurred copies of one photo
    score 0.95 to 1.0; different photos of one amulet type mostly under
    0.9.""",
    "linkage": """linkage : {"average", "single"}, default="average"
    How duplicate pairs become groups:

    - ``"average"``: two linked groups merge only when the mean affinity
      over all pairs between them is over 0.6, a duplicate pair counting 1
      and any other pair 0 to 1 by its hash distance and embedding
      similarity; so one wrong link cannot chain two different objects into
      one group;
    - ``"single"``: pairs are joined transitively (union-find): if A
      matches B and B matches C, all three share a group.""",
    "n_jobs": """n_jobs : int, default=None
    Threads that read and measure the files and run the CNN. ``None`` means 1
    unless in a :func:`joblib.parallel_config` context; ``-1`` means all
    processors.""",
    "progress": """progress : bool, default=False
    Show a progress bar.""",
}


def fill_doc(obj):
    """Fill the ``{name}`` fields of ``obj.__doc__`` from :data:`DOCS`.

    Each entry is indented like the field it replaces, so the text can sit in
    a numpydoc Parameters section at any depth.
    """
    lines = []
    for line in obj.__doc__.splitlines():
        stripped = line.strip()
        if stripped.startswith("{") and stripped.endswith("}") and (
                stripped[1:-1] in DOCS):
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(textwrap.indent(DOCS[stripped[1:-1]], indent))
        else:
            lines.append(line)
    obj.__doc__ = "\n".join(lines)
    return obj
