"""The library behind ``hybridclf predict`` and ``extract``: hybridclf.batch."""

import codecs
import os

import pytest

from hybridclf.batch import BatchPrediction, open_set_options

INFO = {"open_set": {"proba_threshold": 0.4, "ood_thresholds": {"hog": 3.0}}}


@pytest.mark.parametrize("kwargs, expected", [
    ({}, (0.4, {"hog": 3.0})),
    ({"threshold": 0.7}, (0.7, {"hog": 3.0})),
    ({"ood": False}, (0.4, None)),
    ({"closed_set": True, "threshold": 0.7}, (0.0, None)),
])
def test_open_set_options_take_the_model_s_unless_overridden(kwargs, expected):
    options = open_set_options(INFO, **kwargs)
    assert (options["proba_threshold"], options["ood_thresholds"]) == expected


def test_a_model_without_open_set_thresholds_never_says_unknown():
    assert open_set_options({}) == {"proba_threshold": 0.0, "ood_thresholds": None,
                                    "novelty": None}


def test_summary_line():
    counts = BatchPrediction(5, n_predicted=3, n_unknown=1, n_unreadable=1)
    assert counts.summary() == "5 files: 3 predicted, 1 unknown, 1 unreadable"


@pytest.mark.parametrize("name", ["predict_to_csv", "extract_to_parquet"])
def test_the_run_settings_are_documented(name):
    # help(predict_to_csv) showed a bare "{settings}" and no allow_pickle,
    # max_pixels, n_jobs, scheduler or partition_size
    import hybridclf.batch

    doc = getattr(hybridclf.batch, name).__doc__
    assert "{settings}" not in doc
    for parameter in ("allow_pickle", "max_pixels, n_jobs", "scheduler",
                      "partition_size"):
        assert f"    {parameter} :" in doc


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """20 digit PNGs in 10 class folders, and a model trained on them."""
    from hybridclf.cli import main
    from hybridclf.sample_data import write_digits_folder

    root = tmp_path_factory.mktemp("batch")
    write_digits_folder(root / "digits", n_per_class=2, size=32, random_state=0)
    code = main(["train", "--data-dir", str(root / "digits"), "--output-dir",
                 str(root / "model"), "--features", "hog", "--image-size", "32",
                 "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1"])
    assert code == 0
    return root


def _stopped_after(monkeypatch, n_rows):
    """Make the predictions stop (Ctrl+C) after ``n_rows`` rows; count the files."""
    import hybridclf.batch
    import hybridclf.prediction
    from hybridclf.prediction._files import predict_files as real

    predicted = []

    def stopping(*args, **kwargs):
        for row in real(*args, **kwargs):
            if n_rows is not None and len(predicted) == n_rows:
                raise KeyboardInterrupt
            predicted.append(row["file"])
            yield row

    # the partitions' function, and the one for a stream or without pyarrow
    monkeypatch.setattr(hybridclf.prediction, "predict_files", stopping)
    monkeypatch.setattr(hybridclf.batch._predict, "predict_files", stopping)
    return predicted


def test_an_interrupted_predict_keeps_the_last_csv_and_leaves_a_partial_one(
        digits, tmp_path, monkeypatch):
    # Ctrl+C at file 5 of 20 left predictions.csv holding 5 rows that read as
    # a whole CSV, and the CSV of the last run was gone
    import hybridclf.batch

    output = tmp_path / "predictions.csv"
    whole = hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                           output)
    before = output.read_bytes()
    _stopped_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"], output,
                                       partition_size=4)
    assert output.read_bytes() == before
    assert len(before.splitlines()) == whole.n_files + 1
    # the rows of the one partition finished
    partial = (tmp_path / "predictions.csv.partial").read_text().splitlines()
    assert len(partial) == 1 + 4


def test_a_stopped_predict_goes_on_where_it_stopped(digits, tmp_path, monkeypatch):
    # Ctrl+C half way through a folder, then the same command again: every
    # file was predicted again from the first (only on Dask did it go on)
    import hybridclf.batch

    model, photos = digits / "model", [digits / "digits"]
    whole = tmp_path / "whole.csv"
    hybridclf.batch.predict_to_csv(model, photos, whole)
    output = tmp_path / "predictions.csv"
    _stopped_after(monkeypatch, 10)
    with pytest.raises(KeyboardInterrupt):
        hybridclf.batch.predict_to_csv(model, photos, output, partition_size=4)
    assert not output.exists()
    predicted = _stopped_after(monkeypatch, None)
    counts = hybridclf.batch.predict_to_csv(model, photos, output, partition_size=4)
    # two partitions of 4 were finished: read back, not predicted again
    assert counts.n_resumed == 8 and len(predicted) == 12
    assert "(8 of them from the stopped run's" in counts.summary()
    assert output.read_bytes() == whole.read_bytes()
    assert not (tmp_path / "predictions.csv.parts").exists()
    assert not (tmp_path / "predictions.csv.partial").exists()
    # a run with other settings is refused, naming the folder to delete
    _stopped_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        hybridclf.batch.predict_to_csv(model, photos, output, partition_size=2)
    with pytest.raises(ValueError, match=r"predictions\.csv\.parts.*delete"):
        hybridclf.batch.predict_to_csv(model, photos, output, partition_size=2,
                                       top_k=1)


def test_a_predict_over_one_partition_keeps_no_partitions(digits, tmp_path,
                                                          monkeypatch):
    # 20 photos, one partition: its rows went through Parquet tables and a
    # manifest (pandas imported, the model and the source hashed: about 0.5 s
    # of CPU time a command) to be kept only once every photo was predicted,
    # a moment before the CSV was written and the folder deleted
    import hybridclf.batch
    import hybridclf.distributed

    model, photos = digits / "model", [digits / "digits"]
    split = tmp_path / "split.csv"
    hybridclf.batch.predict_to_csv(model, photos, split, partition_size=8)

    def kept(*args, **kwargs):
        raise AssertionError("the rows went through kept partitions")

    monkeypatch.setattr(hybridclf.distributed, "partitioned_rows", kept)
    output = tmp_path / "predictions.csv"
    counts = hybridclf.batch.predict_to_csv(model, photos, output, partition_size=20)
    assert counts.n_files == 20 and output.read_bytes() == split.read_bytes()
    # the rows a stopped run kept are still read back
    stopped = tmp_path / "stopped.csv"
    os.makedirs(f"{stopped}.parts")
    with pytest.raises(AssertionError, match="kept partitions"):
        hybridclf.batch.predict_to_csv(model, photos, stopped, partition_size=20)


def test_a_stopped_predict_then_photos_added_predicts_them_all(digits, tmp_path,
                                                               monkeypatch, caplog):
    # the rows kept by a stopped run are of the old file list: the run after
    # photos were added must not be refused for it (a run without kept rows
    # was not), and must not mix them in
    import shutil

    import hybridclf.batch

    photos = tmp_path / "photos"
    shutil.copytree(digits / "digits", photos)
    model, output = digits / "model", tmp_path / "predictions.csv"
    _stopped_after(monkeypatch, 10)
    with pytest.raises(KeyboardInterrupt):
        hybridclf.batch.predict_to_csv(model, [photos], output, partition_size=4)
    first = sorted(p for p in photos.rglob("*.png"))[0]
    shutil.copy(first, first.parent / "added.png")
    predicted = _stopped_after(monkeypatch, None)
    counts = hybridclf.batch.predict_to_csv(model, [photos], output,
                                            partition_size=4)
    assert counts.n_files == 21 and counts.n_resumed == 0 and len(predicted) == 21
    assert "another file list" in caplog.text
    fresh = tmp_path / "fresh.csv"
    hybridclf.batch.predict_to_csv(model, [photos], fresh)
    assert output.read_bytes() == fresh.read_bytes()


def test_a_csv_file_has_a_byte_order_mark_for_excel_and_a_stream_none(
        digits, tmp_path):
    # Excel on Windows read a CSV without the mark in the legacy code page:
    # Thai class and file names became mojibake; a pipe to a program wants none
    import io

    import hybridclf.batch

    thai = tmp_path / "พระสมเด็จ"
    thai.mkdir()
    photo = next((digits / "digits" / "digit_3").glob("*.png"))
    (thai / "องค์.png").write_bytes(photo.read_bytes())
    output = tmp_path / "predictions.csv"
    hybridclf.batch.predict_to_csv(digits / "model", [thai], output)
    data = output.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    assert "องค์.png" in data.decode("utf-8-sig").splitlines()[1]
    stream = io.StringIO()
    hybridclf.batch.predict_to_csv(digits / "model", [thai], stream)
    assert stream.getvalue().startswith("file,label,")


def test_a_device_as_the_output_is_written_as_it_is(digits, tmp_path):
    # --output /dev/stdout (or /dev/null, a named pipe) must stay a device:
    # no '/dev/stdout.partial' renamed over it
    import hybridclf.batch

    counts = hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                            os.devnull)
    assert counts.n_files == 20
    assert not os.path.isfile(os.devnull)
    assert not os.path.exists(f"{os.devnull}.partial")


def test_predicting_a_folder_again_into_it_skips_its_last_csv(digits, tmp_path):
    # 'predict photos/ --output photos/predictions.csv' run a second time was
    # refused: "the output is one of the images to predict" (the last CSV)
    import shutil

    import hybridclf.batch

    photos = tmp_path / "photos"
    shutil.copytree(digits / "digits", photos)
    output = photos / "predictions.csv"
    first = hybridclf.batch.predict_to_csv(digits / "model", [photos], output)
    (photos / "predictions.csv.partial").write_text("file\n")  # a stopped run
    again = hybridclf.batch.predict_to_csv(digits / "model", [photos], output)
    assert again.n_files == first.n_files == 20
    assert "predictions.csv" not in output.read_text()
    with pytest.raises(ValueError, match="one of the images to predict"):
        hybridclf.batch.predict_to_csv(digits / "model", [output], output)


def test_extracting_a_folder_again_into_it_resumes(digits, tmp_path):
    # 'extract photos/ --output-dir photos/features' run again listed its own
    # partitions as photos and was refused as "another file list"
    import shutil

    import hybridclf.batch

    photos = tmp_path / "photos"
    shutil.copytree(digits / "digits", photos)
    first = hybridclf.batch.extract_to_parquet(digits / "model", [photos],
                                               photos / "features")
    again = hybridclf.batch.extract_to_parquet(digits / "model", [photos],
                                               photos / "features")
    assert again.n_files == first.n_files == 20
    assert (again.computed, again.skipped) == ([], [0])


def test_a_folder_of_only_the_last_run_s_output_is_no_images(digits, tmp_path):
    # 'predict out/ --output out/predictions.csv' where out/ held only the last
    # CSV reported "0 files" with exit status 0 and emptied that CSV; extract
    # was refused as "another file list"
    import hybridclf.batch
    from hybridclf.exceptions import NoImagesError

    out = tmp_path / "out"
    output = out / "predictions.csv"
    hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"], output)
    before = output.read_bytes()
    with pytest.raises(NoImagesError, match=r"No images found in '.*out'"):
        hybridclf.batch.predict_to_csv(digits / "model", [out], output)
    assert output.read_bytes() == before
    hybridclf.batch.extract_to_parquet(digits / "model", [digits / "digits"],
                                       out / "features")
    with pytest.raises(NoImagesError, match=r"No images found in '.*features'"):
        hybridclf.batch.extract_to_parquet(digits / "model", [out / "features"],
                                           out / "features")


@pytest.mark.parametrize("name", ["results/", "existing"])
def test_an_output_that_is_a_folder_is_refused_before_the_run(digits, tmp_path,
                                                               monkeypatch, name):
    # '--output results/' predicted every file, then failed on renaming
    # 'results/.partial' (Not a directory), leaving a folder of hidden files;
    # an existing folder failed with a bare "[Errno 21] Is a directory"
    import hybridclf.batch

    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    predicted = _stopped_after(monkeypatch, None)
    with pytest.raises(ValueError, match=r"is a folder: --output names the CSV "
                       r"file.*predictions\.csv"):
        hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"], name)
    assert predicted == []
    assert sorted(os.listdir(tmp_path)) == ["existing"]
    assert os.listdir(tmp_path / "existing") == []


def test_a_second_run_on_the_same_output_is_refused_while_one_runs(digits, tmp_path):
    # two runs on one --output both wrote predictions.csv.partial, emptying
    # each other's, and each took the other's unfinished partitions for a
    # stopped run's; the one that finished first removed them, and the
    # other failed on its next partition with a pyarrow "Failed to open"
    fcntl = pytest.importorskip("fcntl")
    import hybridclf.batch

    output = tmp_path / "predictions.csv"
    partial = tmp_path / "predictions.csv.partial"
    with open(partial, "ab") as running:  # the first run, as it holds its output
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        running.write(b"file,label\n")
        running.flush()
        with pytest.raises(OSError, match=r"Another run is writing the output "
                           r"'.*predictions\.csv'.*another output \(--output\)"):
            hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                           output)
        assert partial.read_bytes() == b"file,label\n"
        assert not output.exists()
        assert not (tmp_path / "predictions.csv.parts").exists()
    # once it ended (even killed: the system drops the lock), a run goes on
    counts = hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                            output)
    assert counts.n_files == 20 and not partial.exists()


def test_a_run_refused_before_writing_leaves_no_empty_partial(digits, tmp_path,
                                                              monkeypatch):
    # the lock of the test above is taken on predictions.csv.partial: a run
    # refused before its first row must not leave that file, empty, behind
    import hybridclf.batch

    output = tmp_path / "predictions.csv"
    _stopped_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                       output, partition_size=2)
    (tmp_path / "predictions.csv.partial").unlink()
    with pytest.raises(ValueError, match="delete"):  # other settings
        hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                       output, partition_size=2, top_k=1)
    assert not (tmp_path / "predictions.csv.partial").exists()


@pytest.mark.parametrize("where", ["features", "features/part"])
def test_extract_to_a_file_names_the_output_dir(digits, tmp_path, where):
    # 'extract --output-dir features' where features is a file failed with a
    # bare "[Errno 17] File exists: '.../features'", after loading the model
    import hybridclf.batch

    (tmp_path / "features").write_text("not a folder")
    with pytest.raises(ValueError, match=r"'output_dir' folder '.*features.*' "
                       r"cannot be made: '.*features' is a file"):
        hybridclf.batch.extract_to_parquet(digits / "model", [digits / "digits"],
                                           tmp_path / where)


class _Bar:
    """A stand-in for tqdm that records each update."""

    made = []

    def __init__(self, total, **kwargs):
        self.total, self.updates = total, []
        _Bar.made.append(self)

    def update(self, n):
        self.updates.append(n)

    def close(self):
        pass


def test_the_progress_bar_moves_batch_by_batch_within_a_partition(
        digits, tmp_path, monkeypatch):
    # predict and extract moved the bar one partition (256 files) at a time:
    # on large photos (a 48-megapixel PNG takes seconds) it stood at 0 for
    # minutes, as if the run had hung
    import tqdm.auto

    import hybridclf.batch

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    _Bar.made.clear()
    hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                   tmp_path / "p.csv", batch_size=4,
                                   partition_size=20, progress=True)
    hybridclf.batch.extract_to_parquet(digits / "model", [digits / "digits"],
                                       tmp_path / "f", batch_size=4,
                                       partition_size=20, progress=True)
    predict_bar, extract_bar = _Bar.made
    assert predict_bar.total == extract_bar.total == 20
    assert sum(predict_bar.updates) == sum(extract_bar.updates) == 20
    # one step per batch of 4 at least, not one of 20
    assert len(predict_bar.updates) >= 5 and max(extract_bar.updates) == 4


def test_an_existing_file_that_is_no_predictions_csv_is_not_replaced(digits,
                                                                     tmp_path):
    # '--output amulet6_groups.csv' (a tab completion away from the groups
    # CSV) replaced the groups CSV with predictions, without a word
    import hybridclf.batch

    groups = tmp_path / "groups.csv"
    groups.write_bytes(b"\xef\xbb\xbffile,group\nphra/1.jpg,a\n")
    with pytest.raises(ValueError, match=r"'.*groups\.csv' is a file that is not "
                       r"a CSV of hybridclf predict \(its first line is "
                       r"'file,group'.*would destroy it"):
        hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"], groups)
    assert groups.read_bytes() == b"\xef\xbb\xbffile,group\nphra/1.jpg,a\n"
    # an earlier run's CSV, or an empty file, is replaced as before
    output = tmp_path / "predictions.csv"
    hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"], output)
    before = output.read_bytes()
    output.write_bytes(before[:200])
    hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"], output)
    assert output.read_bytes() == before
    (tmp_path / "empty.csv").touch()
    hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                   tmp_path / "empty.csv")


def test_output_dash_is_standard_output_and_extract_refuses_it(digits, tmp_path,
                                                               monkeypatch, capsys):
    # 'predict --output -' wrote a file named '-' and printed "Predictions
    # written to .../-"; 'extract --output-dir -' made a folder named '-'
    from hybridclf.cli import main

    monkeypatch.chdir(tmp_path)
    photos = str(digits / "digits" / "digit_3")
    assert main(["predict", "--model-dir", str(digits / "model"), photos,
                 "--output", "-"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("file,label,") and len(lines) == 1 + 2
    assert "2 files: 2 predicted" in captured.err
    assert main(["extract", "--model-dir", str(digits / "model"), photos,
                 "--output-dir", "-"]) == 2
    assert "'-' (standard output) cannot take the Parquet dataset" in (
        capsys.readouterr().err)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="symbolic links")
def test_an_output_that_is_a_symbolic_link_is_written_through(digits, tmp_path):
    # the CSV was renamed over the link itself: 'latest.csv' became a file of
    # its own and the CSV it pointed to kept the old predictions
    import hybridclf.batch

    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "today.csv").write_text("file,label,confidence\nold.png,3,0.9\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(runs / "today.csv")
    hybridclf.batch.predict_to_csv(digits / "model",
                                   [digits / "digits" / "digit_3"], link)
    assert link.is_symlink() and os.readlink(link) == str(runs / "today.csv")
    rows = (runs / "today.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith("file,label,") and len(rows) == 1 + 2
    assert "old.png" not in rows[1] + rows[2]
    # the rename stayed in the target's folder; nothing is left beside either
    assert sorted(os.listdir(runs)) == ["today.csv"]
    assert sorted(os.listdir(tmp_path)) == ["latest.csv", "runs"]


def test_a_name_that_is_not_utf8_is_escaped_as_in_parquet_however_predicted(
        digits, tmp_path, monkeypatch):
    # the CSV kept the raw bytes of a Latin-1 name (not UTF-8: pandas and a
    # spreadsheet fail on the file), but wrote them '\xe9' as in Parquet when
    # the row was read back from a stopped run's partitions: two answers
    import io

    import hybridclf.batch

    photos = tmp_path / "photos"
    photos.mkdir()
    for name, digit in ((b"a\xe9.png", 3), (b"b.png", 4), (b"c.png", 5)):
        source = next((digits / "digits" / f"digit_{digit}").glob("*.png"))
        with open(os.fsencode(photos) + b"/" + name, "wb") as fh:
            fh.write(source.read_bytes())
    whole = tmp_path / "whole.csv"
    hybridclf.batch.predict_to_csv(digits / "model", [photos], whole)
    text = whole.read_bytes().decode("utf-8-sig")  # strict: valid UTF-8
    assert text.splitlines()[1].startswith(f"{photos}/a\\xe9.png,digit_")
    stream = io.StringIO()
    hybridclf.batch.predict_to_csv(digits / "model", [photos], stream)
    assert stream.getvalue() == text
    _stopped_after(monkeypatch, 2)
    resumed = tmp_path / "resumed.csv"
    with pytest.raises(KeyboardInterrupt):
        hybridclf.batch.predict_to_csv(digits / "model", [photos], resumed,
                                       partition_size=1)
    _stopped_after(monkeypatch, None)
    counts = hybridclf.batch.predict_to_csv(digits / "model", [photos], resumed,
                                            partition_size=1)
    assert counts.n_resumed == 2
    assert resumed.read_bytes() == whole.read_bytes()


def test_a_read_only_earlier_csv_is_kept_and_refused_before_the_run(
        digits, tmp_path, monkeypatch):
    # an earlier predictions.csv made read-only to keep it was replaced all
    # the same (the CSV is renamed over it, which only the folder allows)
    import stat

    import hybridclf.batch

    output = tmp_path / "predictions.csv"
    hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"], output)
    output.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before = output.read_bytes()
    predicted = _stopped_after(monkeypatch, None)
    with pytest.raises(PermissionError, match=r"'.*predictions\.csv' is read-only, "
                       r"so it is kept.*chmod u\+w.*--output"):
        hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                       output)
    assert predicted == [] and output.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["predictions.csv"]
    output.chmod(stat.S_IRUSR | stat.S_IWUSR)  # writable again: replaced
    hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"], output)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_fails_before_the_work_naming_the_csv_and_its_folder(
        digits, tmp_path, monkeypatch):
    # predict on a full disk predicted every file, then failed with a bare
    # "[Errno 28] No space left on device"; /dev/full answers every write so
    import errno

    import hybridclf.batch

    output = tmp_path / "predictions.csv"
    (tmp_path / "predictions.csv.partial").symlink_to("/dev/full")
    predicted = _stopped_after(monkeypatch, None)
    with pytest.raises(OSError, match=r"Could not write the CSV '.*predictions\.csv"
                       r"\.partial' \(No space left on device\).*Free space in "
                       r"'.*'.*run the same command again") as failed:
        hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                       output)
    assert failed.value.errno == errno.ENOSPC
    assert predicted == [] and not output.exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failed_atomic_write_names_the_file_and_its_folder(tmp_path):
    # extract's partitions and manifest on a full disk: "error: [Errno 28] No
    # space left on device" (or pyarrow's "Error writing bytes to file")
    import errno

    from hybridclf.utils._paths import written_whole

    with pytest.raises(OSError, match=r"Could not write '.*part-00000\.parquet' "
                       r"\(No space left on device\); the file is as it was\. "
                       r"Free space in '.*'") as failed:
        with written_whole(tmp_path / "part-00000.parquet"), \
                open("/dev/full", "w") as fh:
            fh.write("rows")
    assert failed.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["predictions.parquet", "predictions.XLSX",
                                  "predictions.csv.gz"])
def test_an_output_named_as_another_format_is_refused_before_the_run(
        digits, tmp_path, monkeypatch, name):
    # '--output predictions.parquet' (or .xlsx, .csv.gz) wrote CSV text under
    # that name: pyarrow, Excel and pandas, which go by the suffix, failed on it
    import hybridclf.batch

    predicted = _stopped_after(monkeypatch, None)
    with pytest.raises(ValueError, match=rf"'.*{name}' is named as an? .*but "
                       r"predict writes (plain )?CSV.*'.*predictions\.csv'"):
        hybridclf.batch.predict_to_csv(digits / "model", [digits / "digits"],
                                       tmp_path / name)
    assert predicted == [] and os.listdir(tmp_path) == []


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="needs /dev/fd")
def test_an_open_file_of_the_process_as_the_output_is_written_as_it_is(
        digits, tmp_path, capsys):
    # '--output /dev/stdout > preds.csv' leads to a regular file: the CSV was
    # written as /dev/stdout.partial and renamed over /dev/stdout (root may:
    # the link became a file), and preds.csv got the summary alone. /dev/fd/N
    # is the same path without the risk to /dev/stdout on the old code
    from hybridclf.cli import main

    preds = tmp_path / "preds.csv"
    with open(preds, "w") as fh:
        assert main(["predict", "--model-dir", str(digits / "model"),
                     str(digits / "digits" / "digit_3"),
                     "--output", f"/dev/fd/{fh.fileno()}"]) == 0
    lines = preds.read_text().splitlines()
    assert lines[0].startswith("file,label,") and len(lines) == 1 + 2
    captured = capsys.readouterr()
    assert captured.out == "" and "2 files: 2 predicted" in captured.err
    assert os.listdir(tmp_path) == ["preds.csv"]


def test_an_interrupted_extract_says_that_a_rerun_goes_on(digits, tmp_path,
                                                          monkeypatch, capsys):
    # Ctrl+C during extract said only "interrupted" (predict says where its
    # finished partitions are kept and that the same command goes on)
    import hybridclf.distributed._extract as extract
    from hybridclf.cli import main

    real, calls = extract._features_of, []

    def stopping(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(extract, "_features_of", stopping)
    command = ["extract", "--model-dir", str(digits / "model"),
               str(digits / "digits"), "--output-dir", str(tmp_path / "features"),
               "--partition-size", "8", "--n-jobs", "1"]
    assert main(command) == 130
    assert (f"the partitions written so far are kept in {tmp_path / 'features'}: "
            "run the same command again") in capsys.readouterr().err
    assert main(command) == 0
    assert "2 computed, 1 already written" in capsys.readouterr().out
