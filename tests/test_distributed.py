"""Partitioned extraction, prediction and training on a Dask LocalCluster."""

import csv
import json
import logging
import os
import re
import signal
import threading
import time

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from hybridclf import load_image_folder, load_model, make_hybrid_pipeline  # noqa: E402
from hybridclf.cli import main  # noqa: E402
from hybridclf.distributed import (  # noqa: E402
    dask_client,
    extract_features,
    parse_scheduler,
    partition_files,
    partitioned_rows,
    predict_partitioned,
    read_features,
)
from hybridclf.exceptions import ClusterError  # noqa: E402
from hybridclf.prediction import (  # noqa: E402
    iter_image_files,
    predict_files,
    transform_features,
)
from hybridclf.sample_data import write_digits_folder  # noqa: E402


class SleepyFeatures(TransformerMixin, BaseEstimator):
    """Four pixel values per image, after ``delay`` seconds per image."""

    def __init__(self, delay=0.1):
        self.delay = delay

    def fit(self, X, y=None):
        self.n_features_in_ = 4
        return self

    def transform(self, X):
        time.sleep(self.delay * len(X))
        return np.asarray(X, dtype=np.float64).reshape(len(X), -1)[:, :4]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """40 digit PNGs in 10 class folders, and a folder of two broken files."""
    root = tmp_path_factory.mktemp("digits")
    write_digits_folder(root / "digits", n_per_class=4, size=32, random_state=0)
    broken = root / "broken"
    broken.mkdir()
    (broken / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (broken / "notes.png").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def model_dir(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    code = main(["train", "--data-dir", str(images / "digits"), "--output-dir",
                 str(out), "--features", "hog", "color", "--image-size", "32",
                 "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    from distributed import Client

    with Client(cluster) as client:
        client.wait_for_workers(2)
        yield client


def _files(images):
    return iter_image_files([images / "digits", images / "broken"])


# -- without a cluster ---------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("local:2", ("local", 2)), ("local:1", ("local", 1)),
    ("tcp://10.0.0.5:8786", ("remote", "tcp://10.0.0.5:8786")),
    ("tls://scheduler.example.org:8786",
     ("remote", "tls://scheduler.example.org:8786")),
    ("tcp://[::1]:8786", ("remote", "tcp://[::1]:8786")),
])
def test_parse_scheduler_accepts_local_and_addresses(value, expected):
    assert parse_scheduler(value) == expected


@pytest.mark.parametrize("value", ["local:0", "local:x", "10.0.0.5:8786",
                                   "http://host:8786", "", "tcp://10.0.0.5",
                                   "tcp://10.0.0.5:"])
def test_parse_scheduler_names_the_option_and_the_fix(value):
    with pytest.raises(ValueError, match="'--scheduler' option must be 'local:N'"):
        parse_scheduler(value)


def test_unreachable_scheduler_raises_cluster_error():
    with pytest.raises(ClusterError, match="Cannot reach the Dask scheduler"):
        with dask_client("tcp://127.0.0.1:9", timeout=1):
            pass


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_mistyped_scheduler_port_or_host_fails_at_once_saying_why():
    # Dask retried both for its whole timeout (30 s) and said only that it
    # timed out
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"nothing listens on port \d+ of "
                       r"'127.0.0.1' \(connection refused\)"):
        with dask_client(f"tcp://127.0.0.1:{_free_port()}", timeout=30):
            pass
    with pytest.raises(ClusterError, match="the host name 'no-such-host.invalid' "
                       "is not known"):
        with dask_client("tcp://no-such-host.invalid:8786", timeout=30):
            pass
    assert time.monotonic() - started < 25  # neither waited for the timeout


def test_another_service_at_the_scheduler_address_is_a_cluster_error():
    # an HTTP server (the dashboard's port for the scheduler's): Dask read
    # its answer as a frame length and failed on an exabyte allocation
    # (MemoryError); one that waits for a request hung for ever
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer():
        for _ in range(2):  # the check's connection, then the handshake's
            conn, _ = server.accept()
            conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            time.sleep(0.5)
            conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ClusterError, match=f"port {port} of '127.0.0.1' "
                           "answers, but not as a Dask scheduler"):
            with dask_client(f"tcp://127.0.0.1:{port}", timeout=5):
                pass
    finally:
        server.close()


def test_a_scheduler_without_workers_is_said_not_left_silent(caplog):
    # the partitions wait for workers: the command seemed to hang, saying nothing
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=":0") as cluster:
        with caplog.at_level(logging.WARNING, logger="hybridclf"):
            with dask_client(cluster.scheduler_address, timeout=10):
                pass
    assert "has no workers: the work waits until some join" in caplog.text


def test_cli_bad_scheduler_is_a_usage_error(model_dir, images, tmp_path, capsys):
    code = main(["extract", "--model-dir", str(model_dir), str(images / "broken"),
                 "--output-dir", str(tmp_path / "f.parquet"), "--scheduler",
                 "lokal:2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "argument --scheduler" in err and "'local:N'" in err


def test_partitions_are_fixed_size_chunks_in_order():
    files = [f"{i}.png" for i in range(7)]
    assert partition_files(files, 3) == [files[:3], files[3:6], files[6:]]
    with pytest.raises(ValueError, match="'partition_size' parameter"):
        partition_files(files, 0)


def test_local_extract_matches_transform_features_and_reports_broken(
        model_dir, images, tmp_path):
    pipe = load_model(model_dir)
    files = _files(images)
    result = extract_features(pipe, files, tmp_path / "f", partition_size=16)
    assert (result.n_files, result.n_partitions) == (42, 3)
    assert sorted(os.path.basename(f) for f, _ in result.errors) == [
        "notes.png", "truncated.jpg"]
    names, features, errors = read_features(tmp_path / "f")
    assert names == files
    good = [i for i, e in enumerate(errors) if not e]
    assert len(good) == 40
    expected = transform_features(pipe, [files[i] for i in good])
    np.testing.assert_array_equal(features[good], expected)
    assert np.isnan(features[[i for i in range(42) if i not in good]]).all()
    manifest = json.loads((tmp_path / "f" / "_hybridclf.json").read_text())
    assert len(manifest["feature_names"]) == features.shape[1]
    assert [b[0] for b in manifest["blocks"]] == ["hog", "color"]


def test_another_file_list_in_the_same_output_is_refused(model_dir, images,
                                                         tmp_path):
    pipe = load_model(model_dir)
    extract_features(pipe, _files(images)[:5], tmp_path / "f", partition_size=2)
    with pytest.raises(ValueError, match="holds partitions of another model, file "
                       "list"):
        extract_features(pipe, _files(images)[:5], tmp_path / "f",
                         partition_size=3)


def test_another_model_in_the_same_output_is_refused(model_dir, images, tmp_path):
    # 'hybridclf extract' with a second model into the folder of the first
    # wrote "0 computed, 1 already written": the first model's features
    files = _files(images)[:5]
    extract_features(load_model(model_dir), files, tmp_path / "f")
    again = extract_features(load_model(model_dir), files, tmp_path / "f")
    assert again.computed == [] and again.skipped == [0]  # the same model resumes
    other = load_model(model_dir).set_params(load__size=24)
    with pytest.raises(ValueError, match="holds partitions of another model"):
        extract_features(other, files, tmp_path / "f")


def _by_name(output):
    names, features, errors = read_features(output)
    return {n: (f, e) for n, f, e in zip(names, features, errors)}


def test_photos_added_since_an_extract_are_the_only_ones_computed(
        model_dir, images, tmp_path):
    # 'hybridclf extract photos/' again after photos were added to photos/
    # was refused ("holds partitions of another ... file list"): every
    # photo had to be computed again in a new folder
    pipe = load_model(model_dir)
    files = _files(images)
    before = [f for i, f in enumerate(files) if i % 4]  # the added ones interleaved
    out = tmp_path / "f"
    extract_features(pipe, before, out, partition_size=8)  # partitions 0 to 3
    added = extract_features(pipe, files, out, partition_size=8)
    assert (added.skipped, added.computed) == ([0, 1, 2, 3], [4, 5])
    assert added.n_files == 42 and len(added.errors) == 2
    fresh = extract_features(pipe, files, tmp_path / "fresh", partition_size=8)
    assert fresh.computed == [0, 1, 2, 3, 4, 5]
    got, expected = _by_name(out), _by_name(tmp_path / "fresh")
    assert set(got) == set(files)
    for name, (features, error) in expected.items():
        np.testing.assert_array_equal(got[name][0], features)
        assert got[name][1] == error
    # stopped while computing the added photos: taken up where it stopped
    os.remove(out / "part-00005.parquet")
    again = extract_features(pipe, files, out, partition_size=8)
    assert again.computed == [5] and _by_name(out).keys() == got.keys()
    assert extract_features(pipe, files, out, partition_size=8).computed == []
    # a photo removed since: refused, naming it (its features are in there)
    with pytest.raises(ValueError, match=r"(?s)1 file\(s\) that are no longer "
                       r"among the inputs \(such as '.*"):
        extract_features(pipe, files[1:], out, partition_size=8)


def test_a_photo_removed_before_a_stopped_extract_resumes_is_refused(
        model_dir, images, tmp_path):
    # a stopped run over added photos was taken up again although a photo of
    # an earlier run's partition had been removed: its row stayed in the
    # output, where a rerun of a finished run refuses such a folder
    pipe = load_model(model_dir)
    files = _files(images)
    out = tmp_path / "f"
    extract_features(pipe, files[:16], out, partition_size=8)  # partitions 0, 1
    extract_features(pipe, files, out, partition_size=8)  # then 2 to 4
    os.remove(out / "part-00004.parquet")  # stopped before its last partition
    with pytest.raises(ValueError, match=r"(?s)1 file\(s\) that are no longer "
                       r"among the inputs \(such as " + re.escape(repr(files[1]))):
        extract_features(pipe, files[:1] + files[2:], out, partition_size=8)
    assert extract_features(pipe, files, out, partition_size=8).computed == [4]


def test_a_rerun_with_other_threads_resumes(model_dir, images, tmp_path):
    # 'hybridclf extract' stopped, then run again with another --n-jobs, was
    # refused: "holds partitions of another model"
    from hybridclf.pipeline import set_image_params

    files = _files(images)[:5]
    extract_features(set_image_params(load_model(model_dir), n_jobs=1), files,
                     tmp_path / "f", partition_size=2)
    os.remove(tmp_path / "f" / "part-00001.parquet")
    pipe = set_image_params(load_model(model_dir), n_jobs=2)
    again = extract_features(pipe, files, tmp_path / "f", partition_size=2)
    assert (again.computed, again.skipped) == ([1], [0, 2])
    assert pipe.get_params()["load__n_jobs"] == 2  # left as it was


def test_a_folder_of_other_files_is_refused_as_the_output(model_dir, images,
                                                          tmp_path, capsys):
    # 'hybridclf extract --output-dir' a model directory (or a dataset folder)
    # wrote its partitions among the model's files
    model_files = sorted(p.name for p in model_dir.iterdir())
    assert main(["extract", "--model-dir", str(model_dir), *_files(images)[:3],
                 "--output-dir", str(model_dir)]) == 1
    err = capsys.readouterr().err
    assert "is not empty" in err and "new or empty output folder" in err
    assert sorted(p.name for p in model_dir.iterdir()) == model_files
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    extract_features(load_model(model_dir), _files(images)[:3], tmp_path / "empty")


def test_a_file_name_that_is_not_utf8_is_extracted(model_dir, images, tmp_path):
    # extract stopped with "'utf-8' codec can't encode '\\udce9'" at the
    # partition holding a Latin-1 name (Parquet text is UTF-8)
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    with open(raw, "wb") as fh:
        fh.write(open(_files(images)[0], "rb").read())
    files = [*_files(images)[:3], os.fsdecode(raw)]
    result = extract_features(load_model(model_dir), files, tmp_path / "f")
    names, features, errors = read_features(tmp_path / "f")
    assert result.errors == [] and not np.isnan(features).any()
    assert names[3] == os.fsdecode(tmp_path) + "/caf\\xe9.png"
    np.testing.assert_array_equal(features[3], features[0])


def _photos(images, folder):
    """Six digit photos of six classes, copied flat into ``folder``."""
    import shutil

    folder.mkdir()
    for k in range(6):
        shutil.copy(sorted((images / "digits" / f"digit_{k}").iterdir())[0],
                    folder / f"photo_{k}.png")
    return iter_image_files([folder])


def _replace(photo, images):
    """Replace ``photo`` in place by another photo (of a nine) of another size."""
    nine = sorted((images / "digits" / "digit_9").iterdir())[1]
    assert nine.stat().st_size != os.path.getsize(photo)
    with open(photo, "wb") as fh:
        fh.write(nine.read_bytes())


def test_a_photo_replaced_since_an_extract_is_computed_again(
        model_dir, images, tmp_path, monkeypatch, caplog):
    # a photo replaced in place by another of the same name kept the first
    # photo's features: a rerun computed only files whose name was new
    import hybridclf.distributed._extract as extract

    pipe = load_model(model_dir)
    files = _photos(images, tmp_path / "photos")
    out = tmp_path / "f"
    extract_features(pipe, files, out, partition_size=4)
    _replace(files[1], images)
    computed, real = [], extract._features_of
    monkeypatch.setattr(extract, "_features_of", lambda pipe, batch, size, tick: (
        computed.extend(batch), real(pipe, batch, size, tick))[1])
    again = extract_features(pipe, files, out, partition_size=4)
    assert again.changed == [files[1]] and again.computed == []
    assert computed == [files[1]]  # the other rows are kept
    assert "1 file(s) changed since their features were written" in caplog.text
    fresh = extract_features(pipe, files, tmp_path / "fresh", partition_size=4)
    expected, got = _by_name(tmp_path / "fresh"), _by_name(out)
    assert list(got) == list(expected)
    for name, (features, error) in expected.items():
        np.testing.assert_array_equal(got[name][0], features)
    assert fresh.changed == []
    assert extract_features(pipe, files, out, partition_size=4).changed == []
    # a part without the stamps (no file's content known): all its rows again
    import pyarrow.parquet as pq

    part = out / "part-00001.parquet"
    pq.write_table(pq.read_table(part).drop_columns(["file_size", "file_mtime_ns"]),
                   part)
    assert extract_features(pipe, files, out, partition_size=4).changed == files[4:]
    assert read_features(out)[0] == files


def test_a_photo_replaced_since_a_stopped_predict_is_predicted_again(
        model_dir, images, tmp_path, caplog):
    # predict stopped, a photo replaced in place, then the same command
    # again: the CSV held the first photo's answer under the name
    pipe = load_model(model_dir)
    files = _photos(images, tmp_path / "photos")
    parts = tmp_path / "parts"
    predict_partitioned(pipe, files, parts_dir=parts, partition_size=2,
                        batch_size=2)
    (parts / "part-00002.parquet").unlink()  # the run was stopped
    _replace(files[0], images)
    resumed, rows = partitioned_rows(pipe, files, parts_dir=parts,
                                     partition_size=2, batch_size=2)
    assert resumed == 2  # the partition of the photo is predicted again
    assert "1 file(s) changed since a stopped run kept their rows" in caplog.text
    expected = list(predict_files(pipe, files, batch_size=2))
    _assert_same_rows(list(rows), expected)
    # the part is written again with the new row: a rerun reads it back
    resumed, rows = partitioned_rows(pipe, files, parts_dir=parts,
                                     partition_size=2, batch_size=2)
    assert resumed == 6
    _assert_same_rows(list(rows), expected)


@pytest.mark.parametrize("text", ["", '{"kind": "feat', "[1, 2]"])
def test_a_cut_or_edited_manifest_of_the_output_is_explained(model_dir, images,
                                                             tmp_path, text):
    # a manifest cut by a crash (it was written in place) or edited gave a
    # bare "Expecting value: line 1 column 1" or an AttributeError traceback
    files = _files(images)[:3]
    extract_features(load_model(model_dir), files, tmp_path / "f")
    (tmp_path / "f" / "_hybridclf.json").write_text(text)
    with pytest.raises(ValueError, match="holds a _hybridclf.json that is not the one "
                       "hybridclf writes.*Delete the folder to start again"):
        extract_features(load_model(model_dir), files, tmp_path / "f")


@pytest.mark.parametrize("kind", ["extract", "predict"])
def test_partitions_written_by_an_older_hybridclf_are_not_resumed(
        model_dir, images, tmp_path, kind):
    # an output folder stopped half-way, then run again after an upgrade, kept
    # the older code's partitions as done beside the new code's: the manifest
    # tied them to the model, not to the code that computed their rows
    files = _files(images)[:5]
    out = tmp_path / "f"

    def run():
        if kind == "extract":
            return extract_features(load_model(model_dir), files, out,
                                    partition_size=2)
        return predict_partitioned(load_model(model_dir), files, parts_dir=out,
                                   partition_size=2)

    run()
    os.remove(out / "part-00001.parquet")
    manifest = json.loads((out / "_hybridclf.json").read_text())
    manifest.pop("code", None)  # as the older hybridclf wrote it
    (out / "_hybridclf.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="written by another version of "
                       "hybridclf.*Delete the folder"):
        run()
    assert not (out / "part-00001.parquet").exists()


# -- on the cluster ------------------------------------------------------------
def test_partitioned_predict_keeps_the_neighbours_in_its_parts(model_dir, images,
                                                               tmp_path):
    from hybridclf.neighbours import EmbeddingIndex
    from hybridclf.prediction import embedding_of

    pipe = load_model(model_dir)
    files = _files(images)
    train = [f for f in files if "broken" not in f][::4]
    index = EmbeddingIndex().fit(
        embedding_of(pipe, transform_features(pipe, train)),
        [f.split(os.sep)[-2] for f in train], files=train)
    local = list(predict_files(pipe, files, batch_size=7, neighbours=2, index=index))
    parts = tmp_path / "parts"
    first = predict_partitioned(pipe, files, parts_dir=parts, partition_size=14,
                                batch_size=7, neighbours=2, index=index)
    again = predict_partitioned(None, files, parts_dir=parts, partition_size=14,
                                batch_size=7, neighbours=2, index=index)
    for rows in (first, again):
        assert [r["neighbours"] for r in rows] == [r["neighbours"] for r in local]
    assert local[files.index(train[0])]["neighbours"][0]["file"] == train[0]
    assert [len(r["neighbours"]) for r in local].count(0) == 2  # the broken files
    with pytest.raises(ValueError, match="number of neighbours"):
        predict_partitioned(None, files, parts_dir=parts, partition_size=14,
                            batch_size=7)


def test_distributed_extract_equals_local_and_sends_the_model_once(
        model_dir, images, tmp_path, client, monkeypatch):
    pipe = load_model(model_dir)
    files = _files(images)
    local = extract_features(pipe, files, tmp_path / "local", partition_size=8)
    submitted = []
    submit = client.submit
    monkeypatch.setattr(client, "submit", lambda func, *args, **kw: submitted.append(
        args) or submit(func, *args, **kw))
    remote = extract_features(pipe, files, tmp_path / "remote", client=client,
                              partition_size=8)
    # one task carries the pipeline (pickled); the 6 partition tasks a
    # reference to it
    assert len(submitted) == 7
    assert isinstance(submitted[0][0], bytes)
    assert all(type(args[0]).__name__ == "Future" for args in submitted[1:])
    assert remote.errors == local.errors
    a, b = read_features(tmp_path / "local"), read_features(tmp_path / "remote")
    assert a[0] == b[0] and a[2] == b[2]
    np.testing.assert_array_equal(a[1], b[1])


def test_rerun_after_deleting_a_partition_recomputes_only_it(
        model_dir, images, tmp_path, client):
    pipe = load_model(model_dir)
    files = _files(images)
    out = tmp_path / "f"
    first = extract_features(pipe, files, out, client=client, partition_size=10)
    assert first.computed == [0, 1, 2, 3, 4]
    before = read_features(out)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    (out / "part-00002.parquet").unlink()
    again = extract_features(pipe, files, out, client=client, partition_size=10)
    assert again.computed == [2]
    assert again.skipped == [0, 1, 3, 4]
    assert sorted(again.errors) == sorted(first.errors)
    for name, stamp in stamps.items():
        if name != "part-00002.parquet":
            assert (out / name).stat().st_mtime_ns == stamp
    after = read_features(out)
    assert after[0] == before[0] and after[2] == before[2]
    np.testing.assert_array_equal(after[1], before[1])


def test_distributed_predict_rows_equal_local_and_resume(model_dir, images,
                                                        tmp_path, client):
    pipe = load_model(model_dir)
    files = _files(images)
    local = list(predict_files(pipe, files, batch_size=7))
    parts = tmp_path / "parts"
    # partitions of whole batches: the same batches as the local run
    remote = predict_partitioned(pipe, files, client=client, parts_dir=parts,
                                 partition_size=14, batch_size=7)
    _assert_same_rows(remote, local)
    assert [r["file"] for r in remote] == files
    assert sum(bool(r["error"]) for r in remote) == 2
    # every partition was kept: a rerun rebuilds the rows without the model
    again = predict_partitioned(None, files, parts_dir=parts, partition_size=14,
                                batch_size=7)
    _assert_same_rows(again, local)


def test_predict_on_dask_writes_each_row_as_it_comes(model_dir, images, tmp_path,
                                                    cluster, monkeypatch):
    # the rows of every partition were held until the last one came in (the
    # cluster closed when they were returned): about 1 kB a row, 10 GB for
    # 10 million files, before the CSV got its first row
    import hybridclf.distributed
    from hybridclf.batch import _predict, predict_to_csv

    written, seen = [], []
    csv_row = _predict._csv_row
    partitioned_rows_ = hybridclf.distributed.partitioned_rows
    monkeypatch.setattr(_predict, "_csv_row", lambda row, *a, **kw: written.append(
        row["file"]) or csv_row(row, *a, **kw))

    def watched(*args, **kwargs):
        resumed, rows = partitioned_rows_(*args, **kwargs)

        def each():
            for row in rows:
                seen.append(len(written))  # rows written when this one comes
                yield row
        return resumed, each()

    monkeypatch.setattr(hybridclf.distributed, "partitioned_rows", watched)
    counts = predict_to_csv(model_dir, [images / "digits"], tmp_path / "p.csv",
                            scheduler=cluster.scheduler_address,
                            partition_size=8)
    assert counts.n_files == len(written) == 40
    assert seen == list(range(40))  # each row written before the next comes


def test_kept_partitions_of_other_open_set_settings_are_refused(model_dir, images,
                                                               tmp_path):
    # predict --scheduler stopped, then run again with --closed-set (or
    # another --threshold or --top-k), kept the old answers of the partitions
    # written, in the same CSV as the new ones
    pipe = load_model(model_dir)
    files = _files(images)[:6]
    parts = tmp_path / "parts"
    first = predict_partitioned(pipe, files, parts_dir=parts, partition_size=2,
                                proba_threshold=1.0)
    assert {r["label"] for r in first if not r["error"]} == {"unknown"}
    (parts / "part-00002.parquet").unlink()  # the run was stopped
    for changed in ({"proba_threshold": 0.0}, {"proba_threshold": 1.0, "top_k": 1}):
        with pytest.raises(ValueError, match="open-set settings"):
            predict_partitioned(pipe, files, parts_dir=parts, partition_size=2,
                                **changed)
    again = predict_partitioned(pipe, files, parts_dir=parts, partition_size=2,
                                proba_threshold=1.0)
    _assert_same_rows(again, first)


def _assert_same_rows(rows, expected):
    def plain(r):
        return (r["file"], str(r["label"]), r["error"],
                [(str(c), p) for c, p in r["top"]])

    assert [plain(r) for r in rows] == [plain(r) for r in expected]
    for key in ("confidence", "ood_score"):
        np.testing.assert_array_equal([r[key] for r in rows],
                                      [r[key] for r in expected])


def test_relative_names_are_read_from_the_callers_folder(model_dir, images,
                                                          tmp_path, client,
                                                          monkeypatch):
    pipe = load_model(model_dir)
    monkeypatch.chdir(images)  # the workers run in another folder
    files = iter_image_files(["digits/digit_3", "broken"])
    result = extract_features(pipe, files, tmp_path / "f", client=client,
                              partition_size=3)
    names, features, errors = read_features(tmp_path / "f")
    assert names == files and not names[0].startswith("/")
    assert [f for f, _ in result.errors] == ["broken/notes.png",
                                             "broken/truncated.jpg"]
    assert not np.isnan(features[:4]).any()
    rows = predict_partitioned(pipe, files, client=client, partition_size=3)
    assert [r["file"] for r in rows] == files
    assert [r["label"] for r in rows[:4]].count("digit_3") >= 3


def test_cli_predict_and_extract_on_a_running_scheduler(model_dir, images,
                                                        tmp_path, cluster, capsys):
    inputs = [str(images / "digits"), str(images / "broken")]
    address = cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    base = ["predict", "--model-dir", str(model_dir), *inputs, "--batch-size", "4"]
    assert main([*base, "--output", str(tmp_path / "local.csv")]) == 0
    assert main([*base, "--output", str(tmp_path / "dask.csv"), "--scheduler",
                 address, "--partition-size", "8"]) == 0
    local = (tmp_path / "local.csv").read_text(encoding="utf-8-sig")
    assert (tmp_path / "dask.csv").read_text(encoding="utf-8-sig") == local
    assert not (tmp_path / "dask.csv.parts").exists()
    rows = list(csv.DictReader(local.splitlines()))
    assert sum(bool(r["error"]) for r in rows) == 2

    capsys.readouterr()
    assert main(["extract", "--model-dir", str(model_dir), *inputs, "--output-dir",
                 str(tmp_path / "features.parquet"), "--scheduler", address,
                 "--partition-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "42 files in 6 partitions: 6 computed, 0 already written; " \
           "2 unreadable" in out
    assert "truncated.jpg" in out
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "features.parquet")
    assert table.column_names == ["file", "error", "features", "file_size",
                                  "file_mtime_ns"]
    assert table.num_rows == 42


def test_killing_a_worker_mid_run_loses_and_duplicates_nothing(images, tmp_path,
                                                               client):
    paths, labels = load_image_folder(images / "digits")
    pipe = make_hybrid_pipeline(features=[("sleepy", SleepyFeatures(delay=0.1))])
    pipe.set_params(load__size=8).fit(paths[::4], labels[::4])
    files = list(paths)
    out = tmp_path / "f"
    box = {}
    worker = threading.Thread(target=lambda: box.update(result=extract_features(
        pipe, files, out, client=client, partition_size=2)))
    worker.start()
    deadline = time.monotonic() + 60
    while not list(out.glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    written_at_kill = len(list(out.glob("part-*.parquet")))
    pids = client.run(os.getpid)
    os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert 1 <= written_at_kill < 20
    result = box["result"]
    assert result.computed == list(range(20)) and result.errors == []
    names, features, errors = read_features(out)
    assert names == files  # each file once, in order
    assert not np.isnan(features).any()
    assert sorted(p.name for p in out.iterdir()) == ["_hybridclf.json"] + [
        f"part-{i:05d}.parquet" for i in range(20)]


class DiesOnAWorker(TransformerMixin, BaseEstimator):
    """Four pixel values per image; on a Dask worker, ``transform`` kills the
    worker's process (as the kernel's out-of-memory killer does) the first
    time (``marker`` not there yet), or every time with ``always``."""

    def __init__(self, marker=None, always=False):
        self.marker = marker
        self.always = always

    def fit(self, X, y=None):
        self.n_features_in_ = 4
        return self

    def transform(self, X):
        from distributed import get_worker

        try:
            get_worker()
        except ValueError:  # not on a worker: fitting, here
            pass
        else:
            if self.always or not os.path.exists(self.marker):
                open(self.marker, "w").close()
                os._exit(1)
        return np.asarray(X, dtype=np.float64).reshape(len(X), -1)[:, :4]


def _one_worker_cluster(allowed_failures=3):
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures":
                          allowed_failures}):
        return LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address=":0",
                            silence_logs=logging.CRITICAL)


def _dying_pipe(images, **params):
    paths, labels = load_image_folder(images / "digits")
    pipe = make_hybrid_pipeline(features=[("dies", DiesOnAWorker(**params))])
    return pipe.set_params(load__size=8).fit(paths[::4], labels[::4]), list(paths)


def test_the_only_worker_killed_and_restarted_still_finishes_the_run(
        images, tmp_path):
    # the model was scattered data: lost with the worker that held it, every
    # task was cancelled ("already forgotten") and the run failed
    from distributed import Client

    pipe, files = _dying_pipe(images, marker=str(tmp_path / "died"))
    with _one_worker_cluster() as cluster, Client(cluster) as client:
        result = extract_features(pipe, files[:6], tmp_path / "f", client=client,
                                  partition_size=3)
    assert (tmp_path / "died").exists()  # the worker was killed once
    assert result.computed == [0, 1] and result.errors == []
    names, features, _ = read_features(tmp_path / "f")
    assert names == files[:6] and not np.isnan(features).any()


def test_a_partition_that_kills_its_workers_is_a_cluster_error(images, tmp_path):
    from distributed import Client

    pipe, files = _dying_pipe(images, marker=str(tmp_path / "died"), always=True)
    with _one_worker_cluster(allowed_failures=0) as cluster, \
            Client(cluster) as client:
        with pytest.raises(ClusterError, match=r"(?s)Partition 0 \(3 files, "
                           r"from '.*'\) could not be computed.*workers died.*"
                           r"--partition-size.*goes on where it stopped"):
            extract_features(pipe, files[:3], tmp_path / "f", client=client,
                             partition_size=3)


def test_train_on_the_cluster_matches_local_training(images, tmp_path, cluster,
                                                     client):
    from distributed import get_task_stream

    common = ["train", "--data-dir", str(images / "digits"), "--features", "hog",
              "color", "--image-size", "32", "--cv-folds", "2", "--test-size",
              "0.25", "--search", "grid", "--n-jobs", "1"]
    assert main([*common, "--output-dir", str(tmp_path / "local")]) == 0
    with get_task_stream(client) as stream:
        assert main([*common, "--output-dir", str(tmp_path / "dask"),
                     "--scheduler", cluster.scheduler_address]) == 0
    local = json.loads((tmp_path / "local" / "model.json").read_text())
    dask = json.loads((tmp_path / "dask" / "model.json").read_text())
    assert dask["cv_scores"] == local["cv_scores"]
    assert dask["best_params"] == local["best_params"]
    assert dask["open_set"] == local["open_set"]
    assert len(stream.data) >= 2  # the folds' features and the search ran there


def _environ(name):
    # a function of this module, not os.environ.get: that would pickle and
    # read this process's environment
    return os.environ.get(name)


def test_local_scheduler_starts_and_closes_a_local_cluster(monkeypatch):
    # the cluster of the other tests (Dask's defaults) exported it here
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with dask_client("local:1") as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 1
        assert all(w.startswith("tcp://127.0.0.1:") for w in workers)
        # Dask's MALLOC_TRIM_THRESHOLD_ slows the image steps down; not set
        env = client.run(_environ, "MALLOC_TRIM_THRESHOLD_")
        assert list(env.values()) == [None]
        env = client.run(_environ, "OPENCV_FOR_THREADS_NUM")
        assert list(env.values()) == ["1"]
        # Ctrl+C on 'predict --scheduler local:2' printed a traceback of every
        # worker process above "interrupted": they leave it to this process
        ignored = client.run(_ignores_ctrl_c)
        assert list(ignored.values()) == [True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        cluster = client.cluster
    assert cluster.status.name == "closed"


def _ignores_ctrl_c():
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_the_commands_keep_dask_info_logs_quiet_after_importing_it():
    # 'hybridclf extract --scheduler local:2' printed some 40 INFO lines of
    # Dask (and a traceback on closing): distributed, imported after the
    # logging was set up, set its logger back to INFO
    import subprocess
    import sys

    code = ("import logging; from hybridclf.cli._common import setup_logging; "
            "setup_logging(0); import distributed; "
            "print(logging.getLogger('distributed.scheduler').getEffectiveLevel())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert int(out) >= logging.WARNING
