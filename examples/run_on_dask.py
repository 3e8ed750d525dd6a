"""Extract features and predict on a Dask cluster, and check it matches a local run.

``hybridclf.distributed`` cuts a file list into partitions and runs them on
Dask workers: the fitted pipeline is sent to each worker once, each
partition's features are written as one Parquet file (a rerun skips the
finished ones), and unreadable files are reported in the output instead of
stopping the run. The same work runs on the command line with
``hybridclf extract ... --scheduler ADDRESS`` and ``hybridclf predict ...
--scheduler ADDRESS`` (see docs/scale-out.md).

Without arguments it trains a small model on scikit-learn's digits and uses a
cluster of 2 local worker processes; give a folder of images, or the address
of a running scheduler::

    python examples/run_on_dask.py [FOLDER] [--scheduler tcp://host:8786]
"""

import argparse
import os
import tempfile

import numpy as np

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.distributed import (
    dask_client,
    extract_features,
    predict_partitioned,
    read_features,
)
from hybridclf.prediction import iter_image_files, predict_files, transform_features
from hybridclf.sample_data import write_digits_folder


def main():
    # Dask starts its worker processes by importing this file again: the work
    # must not run at import
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="class-per-folder images")
    parser.add_argument("--scheduler", default="local:2",
                        help="'local:N' or a scheduler address (default: local:2)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="hybridclf-dask-")

    folder = args.folder or write_digits_folder(os.path.join(work, "digits"),
                                                n_per_class=8)
    paths, labels = load_image_folder(folder)
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    pipe.fit(paths, labels)
    files = iter_image_files([folder])
    # a file that is not an image: reported, not fatal
    bad = os.path.join(work, "notes.png")
    with open(bad, "w") as fh:
        fh.write("not an image\n")
    files = [*files, bad]

    with dask_client(args.scheduler) as client:
        n_workers = len(client.scheduler_info()["workers"])
        print(f"cluster {args.scheduler}: {n_workers} workers")
        result = extract_features(pipe, files, os.path.join(work, "features"),
                                  client=client, partition_size=16)
        print(f"extract: {result.n_files} files in {result.n_partitions} "
              f"partitions, {len(result.computed)} computed")
        rows = predict_partitioned(pipe, files, client=client, partition_size=16)

    names, features, errors = read_features(os.path.join(work, "features"))
    print(f"features: {features.shape[0]} files x {features.shape[1]} columns in "
          f"{len(os.listdir(os.path.join(work, 'features')))} files under "
          f"{os.path.join(work, 'features')}")
    unreadable = [r for r in rows if r["error"]]
    for row in unreadable:
        print(f"unreadable: {row['file']}: {row['error']}")

    # the same work here, without Dask
    good = [i for i, error in enumerate(errors) if not error]
    local = transform_features(pipe, [names[i] for i in good])
    same_features = np.allclose(features[good], local, atol=1e-5)
    local_rows = list(predict_files(pipe, files))
    same_labels = [r["label"] for r in rows] == [r["label"] for r in local_rows]
    print(f"same features as a local run: {same_features}")
    print(f"same predictions as a local run: {same_labels}")
    truth = {os.path.abspath(p): label for p, label in zip(paths, labels)}
    scored = [r for r in rows if os.path.abspath(r["file"]) in truth]
    accuracy = np.mean([r["label"] == truth[os.path.abspath(r["file"])]
                        for r in scored])
    print(f"training accuracy on the cluster: {accuracy:.3f}")


if __name__ == "__main__":
    main()
