"""The ``hybridclf`` command: one sub-command per task.

Each sub-command is a module of this package with ``format_parser(parser)``,
which declares its options, and ``run(args) -> int``, which calls one library
function and prints what it returned. :func:`main` parses the command line
and returns the exit code. Nothing heavy is imported before a command runs,
so ``hybridclf --help`` answers at once.
"""

import argparse
import gc
import io
import os
import sys
import warnings

from . import (
    _augment,
    _deploy,
    _evaluate,
    _extract,
    _inspect,
    _predict,
    _quickstart,
    _serve,
    _train,
)
from ._common import PIPE_CLOSED, command_imports, report_errors, setup_logging

__all__ = ["build_parser", "main"]

#: name: (module, one-line help), in the order ``hybridclf --help`` lists them
COMMANDS = {
    "inspect": (_inspect,
                "find broken files, duplicates and quality problems in a dataset"),
    "quickstart": (_quickstart,
                   "inspect, train, evaluate: the whole workflow on one dataset"),
    "augment": (_augment,
                "write a class-balanced copy of a dataset with augmented images"),
    "train": (_train, "train, cross-validate (grouped) and save a model directory"),
    "evaluate": (_evaluate,
                 "evaluate a model directory on a test set: plots, HTML, JSON"),
    "predict": (_predict,
                "predict image files or folders in batches, with 'unknown'"),
    "extract": (_extract, "write the features of a model for many files to Parquet"),
    "serve": (_serve, "serve a model directory over HTTP (FastAPI, uvicorn)"),
    "deploy": (_deploy,
               "write a Dockerfile, docker-compose.yml or systemd unit to serve"),
}


class _CommandParser(argparse.ArgumentParser):
    """A sub-command's parser whose errors name the option a typo meant.

    ``--output-dirr m`` left ``--output-dir`` missing, and argparse said only
    that it is required, not that ``--output-dirr`` is unknown.
    """

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(args or [])
        return super().parse_known_args(args, namespace)

    def error(self, message):
        known = [s for a in self._actions for s in a.option_strings]
        typos = [a.split("=")[0] for a in getattr(self, "_given", [])
                 if a.startswith("--") and not any(
                     k.startswith(a.split("=")[0]) for k in known)]
        if typos and "unrecognized arguments" not in message:
            message += f" (unknown: {', '.join(typos)}{_meant(typos, known)})"
        super().error(message)


def _meant(options, known):
    """"; did you mean --x?" for the known options close to ``options``."""
    import difflib

    close = [c for o in options for c in difflib.get_close_matches(o, known, n=1)]
    return f"; did you mean {', '.join(close)}?" if close else ""


# where the sub-command's own -v/--verbose counts, until _MainParser adds it
_VERBOSE_AFTER = "verbose_after_command"


class _MainParser(argparse.ArgumentParser):
    """The top-level parser: ``-v`` before and after the command add up.

    argparse parses a sub-command into a namespace of its own and copies it
    over the top level's, so the count after the command replaced the one
    before it: ``hybridclf -v train ... --verbose`` logged at INFO, not DEBUG.
    The count after the command has a name of its own and is added here.
    """

    def parse_known_args(self, args=None, namespace=None):
        args, unknown = super().parse_known_args(args, namespace)
        args.verbose += vars(args).pop(_VERBOSE_AFTER, 0)
        return args, unknown


def build_parser():
    """The argument parser of the ``hybridclf`` command."""
    from .. import __version__

    parser = _MainParser(
        prog="hybridclf",
        description="Image classification with deep and classical features.",
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="-v for progress messages, -vv for debugging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=_CommandParser)
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        module.format_parser(sub_parser)
        # also after the command, where the original system's scripts took it
        # (``train --data-dir d --verbose``); added to the count before it
        sub_parser.add_argument("-v", "--verbose", action="count",
                                dest=_VERBOSE_AFTER, default=argparse.SUPPRESS,
                                help="-v for progress messages, -vv for debugging")
        sub_parser.set_defaults(run=module.run)
    return parser


def _refuse_unknown(parser, args, unknown):
    """argparse's "unrecognized arguments" error, from the sub-command's parser
    (its usage, not the top level's), naming the option each unknown one is
    likely a typo of; exits with 2 as argparse does."""
    subs = next(a for a in parser._actions
                if isinstance(a, argparse._SubParsersAction)).choices
    target = subs.get(args.command, parser)
    known = [s for a in target._actions for s in a.option_strings]
    options = [arg.split("=")[0] for arg in unknown if arg.startswith("--")]
    meant = _meant(options, known)
    target.error("unrecognized arguments: " + " ".join(unknown)
                 + (f" ({meant[2:]})" if meant else ""))


def _plain_warning(message, category, filename, lineno, line=None):
    """A warning as the command line shows it: its category and message.

    Python's own format added the library's file, line and source line
    (``paths, labels, names = drop_label_conflicts(...)``), which tell a
    user nothing.
    """
    return f"{category.__name__}: {message}\n"


def _print_names_as_bytes():
    """Let standard output carry file names that are not UTF-8, byte for byte.

    In a UTF-8 locale other than C (``en_US.UTF-8``) Python's standard output
    refuses the surrogates that stand for such bytes: a command printing the
    name (predict's CSV, the unreadable files of evaluate) stopped with
    "'utf-8' codec can't encode". The C locale's choice is taken instead.
    """
    stream = sys.stdout
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        stream.reconfigure(errors="surrogateescape")


def main(argv=None):
    """Run the ``hybridclf`` command line and return its exit code.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments; ``None`` reads ``sys.argv[1:]``: the process's own
        command line, which ends when the command does, so the objects of its
        imports, and at the end all of them, are frozen (:func:`gc.freeze`):
        the collections the command and the interpreter's exit make skip
        them (the exit after a training took 0.4 s of CPU time, 0.05 s so).

    Returns
    -------
    code : int
        0 on success (``--help`` and ``--version`` too), 1 when the work
        failed with a reported error (one ``error:`` line on standard error),
        2 for a usage error: an unknown option, a missing argument or an
        invalid value, with argparse's message.
    """
    parser = build_parser()
    own = argv is None  # the process's own command line: it ends with the command
    try:
        # a registry option (--classifier, --features) imports scikit-learn
        with command_imports(freeze=own):
            args, unknown = parser.parse_known_args(argv)
            if unknown:
                _refuse_unknown(parser, args, unknown)
    except SystemExit as exc:  # --help, --version or parser.error
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    setup_logging(args.verbose)
    warnings.formatwarning = _plain_warning
    _print_names_as_bytes()
    if args.command is None:
        parser.print_help()
        return 2
    code = report_errors(args.run, args)
    if own:
        gc.freeze()
        if code == PIPE_CLOSED:
            # the rows still buffered would fail again at exit, with a traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
