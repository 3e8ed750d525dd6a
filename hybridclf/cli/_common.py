"""What the subcommands share: output, logging, options, value checks, errors.

Every option that means the same in several commands is declared here once,
with one name (``--data-dir``, ``--n-jobs``, ``--seed``, ``--allow-pickle``,
``--max-pixels``, ``--scheduler``...). Option values are checked by the
``type=`` functions below, so a bad value is a usage error: argparse's
message and exit status 2. This module imports nothing heavy: ``hybridclf
--help`` must answer without scikit-learn.
"""

import argparse
import contextlib
import gc
import logging
import os
import sys

logger = logging.getLogger("hybridclf")

#: ``hybridclf.io.DEFAULT_MAX_PIXELS``, written out for the help text (the
#: help must not import the io module); a test checks that the two agree.
DEFAULT_MAX_PIXELS_TEXT = "64000000"


def out(text=""):
    """Write one line of the command's report to standard output."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def setup_logging(verbose):
    """WARNING, INFO with ``-v``, DEBUG with ``-vv``; Dask's own log kept quieter."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Dask logs every worker start and stop at INFO level. Importing
    # distributed (later, with --scheduler) sets its logger's level from
    # Dask's configuration, which reads this variable (also in the workers).
    dask_level = "debug" if verbose >= 2 else "warning"
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", dask_level)
    if "dask.config" in sys.modules:  # read its variables already
        sys.modules["dask.config"].refresh()
    logging.getLogger("distributed").setLevel(
        logging.DEBUG if verbose >= 2 else logging.WARNING)


@contextlib.contextmanager
def collector_paused(*, freeze=False):
    """Run the body with the cyclic garbage collector off, then as it was.

    For a command's imports: scikit-learn with SciPy and pandas, and
    imbalanced-learn make some 170,000 objects, none of them garbage, and the
    collections they trigger took a sixth of their CPU time (0.25 s of 1.9 s
    here). ``freeze=True`` then moves every object to the permanent generation
    (:func:`gc.freeze`), which later collections skip: only for the process's
    own command, as garbage there is never collected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


@contextlib.contextmanager
def command_imports(*, freeze=False):
    """A command's imports: :func:`collector_paused`, and no unused packages.

    scikit-learn imports pandas when it is installed, and imbalanced-learn
    (through ``sklearn-compat``) scikit-learn's test helpers, which import
    pytest: work that no command uses at that point (``hybridclf train``:
    0.1 s of its imports for pytest, 0.17 s for pandas). Inside the block
    both are refused as if absent
    (:func:`~hybridclf.utils._memory.without_unused_imports`, as the service
    does), which both libraries take in their stride; a command that needs
    pandas later (cleanlab, for label-issue filters other than the
    default; Parquet output) imports it
    then, as usual. In a process that imported them already (a notebook, a
    test run) nothing changes.
    """
    from ..utils._memory import without_unused_imports

    with collector_paused(freeze=freeze), without_unused_imports():
        yield


#: The exit status when standard output's reader went away (128 + SIGPIPE).
PIPE_CLOSED = 141


def report_errors(run, args):
    """Run a command; a reported error is one ``error:`` line and exit status 1.

    Ctrl+C is one ``interrupted`` line and exit status 130 (128 + SIGINT, as
    a shell reports it), not a traceback through whatever was running; ``-vv``
    logs where it stopped. Output piped into a reader that stopped reading
    (``hybridclf predict DIR | head``) ends the command quietly with status
    :data:`PIPE_CLOSED`, as a shell tool killed by SIGPIPE.
    """
    from ..exceptions import HybridClfError

    try:
        return run(args)
    except BrokenPipeError:
        # not an error of the command: its reader has all it wanted
        logger.debug("output closed by its reader", exc_info=True)
        return PIPE_CLOSED
    except (HybridClfError, OSError, ValueError) as exc:
        # OSError: a file named for an output folder, a folder for a file, no
        # permission: the message names the path
        logger.debug("details", exc_info=True)
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        logger.debug("interrupted", exc_info=True)
        sys.stderr.write("interrupted\n")
        return 130


# -- value checks (argparse ``type=``) -------------------------------------------
def bounded(convert, low=None, high=None, *, low_open=False, high_open=False,
            name="number"):
    """A ``type=`` function: ``convert`` the text and check it lies in a range."""
    def check(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {name}: {text!r}") from None
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            span = f"{left}{'-inf' if low is None else low}, " \
                   f"{'inf' if high is None else high}{right}"
            raise argparse.ArgumentTypeError(
                f"must be a {name} in {span}; got {text!r}")
        return value

    check.__name__ = name
    return check


positive_int = bounded(int, 1, name="positive integer")
positive_float = bounded(float, 0, low_open=True, name="positive number")
fraction = bounded(float, 0, 1, name="fraction")
port_number = bounded(int, 1, 65535, name="port number")


def n_jobs(text):
    """A thread count: a positive integer, or -1 (all cores), -2 (all but one)..."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"must be a non-zero integer (-1: all cores); got {text!r}")
    return value


def scheduler_address(text):
    """A ``--scheduler`` value, checked by ``distributed.parse_scheduler``."""
    from ..distributed import parse_scheduler

    try:
        parse_scheduler(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


#: The name that means standard output where a command writes one file.
STDOUT = "-"


def file_or_stdout(text):
    """An ``--output`` file: ``-`` is standard output (None), as in most CLIs.

    ``predict --output -`` wrote a file named ``-`` in the current folder
    and printed "Predictions written to .../-" where the CSV was expected.
    ``./-`` still names such a file.
    """
    return None if text == STDOUT else text


def folder_not_stdout(what):
    """A ``type=`` function for an option naming an output folder: not ``-``.

    ``-`` is standard output for a file (``predict --output -``), but a
    folder cannot go there: ``extract``, ``train``, ``evaluate``,
    ``inspect``, ``augment``, ``deploy`` and ``quickstart --output-dir -``
    (and ``train --cache-dir -``, ``serve --feedback-dir -``) made a folder
    named ``-``. ``./-`` still names such a folder. ``what`` says what the
    folder holds, in the message.
    """
    def check(text):
        if text == STDOUT:
            raise argparse.ArgumentTypeError(
                f"'-' (standard output) cannot take {what}, written as a folder "
                "of files: give a folder name (./- for a folder named '-')")
        return text

    check.__name__ = "folder"
    return check


def registry_name(registry):
    """A ``type=`` function accepting the names of a ``hybridclf.pipeline`` registry.

    The registry is imported when a value is given, not for ``--help``.
    """
    def check(text):
        from .. import pipeline

        names = getattr(pipeline, registry)
        if text not in names:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {text!r} (choose from {', '.join(names)})")
        return text

    check.__name__ = registry.lower()
    return check


# -- options that several commands share ----------------------------------------
class _OneFolder(argparse.Action):
    """Store a folder option given once; a second one is a usage error, not
    silently the only one read (``train --data-dir`` takes several)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} takes one folder; got "
                         f"{getattr(namespace, self.dest)!r} and {values!r}. "
                         "'hybridclf train' merges several")
        setattr(namespace, self.dest, values)


def add_data_dir(parser, *, required=True, help=None, several=False, aliases=()):
    extra = {"nargs": "+", "action": "extend"} if several else {"action": _OneFolder}
    parser.add_argument(
        "--data-dir", *aliases, dest="data_dir", required=required,
        metavar="DATA_DIR", **extra,
        help=help or "class-per-folder dataset: DATA_DIR/<class>/<image>")


def add_model_dir(parser):
    parser.add_argument("--model-dir", required=True,
                        help="model directory written by 'hybridclf train'")


def add_inputs(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files or folders")


def add_n_jobs(parser, what, *, default=-1):
    fallback = "the model's own" if default is None else "all cores"
    parser.add_argument("--n-jobs", type=n_jobs, default=default, metavar="N",
                        help=f"threads for {what} (-1: all cores; default: "
                        f"{fallback})")


def add_seed(parser):
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed (default: %(default)s)")


def add_allow_pickle(parser):
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a pickled model (runs code from the file)")


def add_batch_size(parser):
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                        help="images per batch (default: %(default)s)")


def add_max_pixels(parser, *, model=True):
    """The --max-pixels option of the commands that decode images."""
    fallback = (f"the model's own, {DEFAULT_MAX_PIXELS_TEXT} unless set at "
                "training" if model else DEFAULT_MAX_PIXELS_TEXT)
    parser.add_argument(
        "--max-pixels", type=positive_int, default=None, metavar="N",
        help="most pixels (width x height) an image may declare in its header; "
        f"larger ones are reported undecoded (default: {fallback})")


def add_scheduler(parser, *, partitions):
    parser.add_argument(
        "--scheduler", type=scheduler_address, default=None, metavar="ADDRESS",
        help="run on Dask: 'local:N' starts N worker processes here, "
        "'tcp://HOST:PORT' joins a running scheduler; files must be readable "
        "at the same paths on every worker (default: run here). Needs the "
        "'scale' extra",
    )
    if partitions:
        parser.add_argument(
            "--partition-size", type=positive_int, default=256, metavar="N",
            help="files per partition: one Dask task, the unit of retry and "
            "of output, and what a rerun after a stopped run takes up again "
            "(default: %(default)s)",
        )


def add_batch_options(parser):
    """The options of the commands that run a saved model over many files."""
    add_batch_size(parser)
    add_n_jobs(parser, "loading and features", default=None)
    add_allow_pickle(parser)
    add_max_pixels(parser)
    add_scheduler(parser, partitions=True)


def batch_options(args):
    """The keyword arguments of :mod:`hybridclf.batch` from those options."""
    return {"batch_size": args.batch_size, "n_jobs": args.n_jobs,
            "allow_pickle": args.allow_pickle, "max_pixels": args.max_pixels,
            "scheduler": args.scheduler, "partition_size": args.partition_size,
            "progress": True}


def add_service_options(parser):
    """--host, --port, --workers, --api-key-env, --admin-key-env,
    --allowed-hosts of serve and deploy."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: %(default)s; 0.0.0.0 "
                        "accepts other machines)")
    parser.add_argument("--port", type=port_number, default=8000,
                        help="TCP port (default: %(default)s)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="worker processes, each with its own copy of the "
                        "model (default: %(default)s)")
    parser.add_argument(
        "--api-key-env", default=None, metavar="VAR",
        help="name of the environment variable that holds the API key; clients "
        "send it in the X-API-Key header (default: no key)",
    )
    parser.add_argument(
        "--admin-key-env", default=None, metavar="VAR",
        help="name of the environment variable that holds the admin key, which "
        "POST /admin/reload then needs in the X-Admin-Key header (the API key "
        "opens no /admin path; it must not be the API key's variable); without "
        "it, /admin answers only the service's own machine (default: no admin "
        "key)")
    parser.add_argument(
        "--allowed-hosts", nargs="+", default=None, metavar="NAME",
        help="the names clients call the server by, in the Host header; others "
        "are answered 400 (DNS rebinding). localhost, 127.0.0.1 and [::1] are "
        "always accepted; '*.example.com' takes the sub-domains, '*' any name "
        "(default: only those of this machine, for requests on a loopback "
        "address)")
