"""The settings of one service: what :func:`create_app` is given, checked once.

:class:`ServiceSettings` is the single object that the app, its routes and
its middleware read (``request.app.state.settings``), and what ``serve``
hands to each uvicorn worker through a settings file (see ``_run.py``). This
module does not import FastAPI.
"""

import json
import numbers
import os
from dataclasses import asdict, dataclass, fields

from ..io import DEFAULT_MAX_PIXELS

__all__ = ["SETTINGS_ENV", "ServiceSettings", "point_workers_at"]

#: The variable that holds the path of the workers' settings file (set by
#: ``serve`` when it runs several workers).
SETTINGS_ENV = "HYBRIDCLF_SERVE_SETTINGS"


def point_workers_at(model_dir):
    """Make the workers' settings file name ``model_dir``; its path, or None.

    With several workers, each worker that uvicorn starts (a rolling restart
    on SIGHUP, a worker that died) reads its settings from this file; with
    one, there is no file and nothing changes.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory that the next workers load.

    Returns
    -------
    path : str or None
        The settings file, None when ``serve`` runs one worker.
    """
    path = os.environ.get(SETTINGS_ENV)
    if not path:
        return None
    with open(path, encoding="utf-8") as fh:
        values = json.load(fh)
    values["model_dir"] = os.path.abspath(os.fspath(model_dir))
    fd = os.open(f"{path}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh)
    os.replace(f"{path}.tmp", path)  # a worker starting now reads one or the other
    return path


def _host_names(hosts):
    """``allowed_hosts`` as a tuple of lower-case names, checked."""
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    names = []
    for host in hosts:
        name = str(host).strip().lower()
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]  # [::1]
        if not name or not all(c.isascii() and (c.isalnum() or c in ".-_:*")
                               for c in name):
            raise ValueError(
                "The 'allowed_hosts' parameter of create_app must list host names "
                "(letters, digits, '.', '-', ':'; '*.example.com' for the "
                f"sub-domains, '*' for any name). Got {host!r} instead.")
        names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class ServiceSettings:
    """The settings of a prediction service, validated when built.

    The parameters are those of :func:`~hybridclf.serve.create_app`, which
    documents them; ``api_key`` and ``admin_key`` are the keys themselves.

    Raises
    ------
    ValueError
        When ``max_body_mb``, ``max_inflight_mb``, ``feedback_max_mb``,
        ``max_batch``, ``max_pixels``, ``read_timeout`` or
        ``limit_concurrency`` is not positive, or ``allowed_hosts`` holds
        something else than host names.
    """

    model_dir: str
    api_key: str | None = None
    max_body_mb: float = 10.0
    max_batch: int = 32
    use_ood: bool = True
    allow_pickle: bool = False
    threads: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    read_timeout: float = 30.0
    feedback_dir: str | None = None
    log_predictions: str | None = None
    allowed_hosts: tuple[str, ...] | None = None
    max_inflight_mb: float | None = None
    feedback_max_mb: float | None = 1024.0
    admin_key: str | None = None
    limit_concurrency: int | None = None

    def __post_init__(self):
        # frozen: normalise through object.__setattr__, once
        for name in ("model_dir", "feedback_dir", "log_predictions"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        if self.allowed_hosts is not None:
            object.__setattr__(self, "allowed_hosts",
                               _host_names(self.allowed_hosts))
        if not self.max_body_mb > 0:
            raise ValueError("The 'max_body_mb' parameter of create_app must be a "
                             f"number > 0. Got {self.max_body_mb!r} instead.")
        for name in ("max_inflight_mb", "feedback_max_mb"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"The {name!r} parameter of create_app must be a "
                                 f"number > 0 or None. Got {value!r} instead.")
        limit = self.limit_concurrency
        if limit is not None and (isinstance(limit, bool) or not isinstance(
                limit, numbers.Integral) or limit < 1):
            raise ValueError(
                "The 'limit_concurrency' parameter of create_app must be an int "
                f">= 1 or None. Got {limit!r} instead.")
        if int(self.max_batch) < 1:
            raise ValueError("The 'max_batch' parameter of create_app must be an "
                             f"int >= 1. Got {self.max_batch!r} instead.")
        if int(self.max_pixels) < 1 or not self.read_timeout > 0:
            raise ValueError(
                "The 'max_pixels' and 'read_timeout' parameters of create_app must "
                f"be > 0. Got {self.max_pixels!r} and {self.read_timeout!r} "
                "instead.")

    @property
    def max_body_bytes(self):
        """The body limit in bytes."""
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_inflight_bytes(self):
        """The bytes of request bodies in flight at once: ``max_inflight_mb``,
        by default 8 bodies at the limit (``8 * max_body_mb``)."""
        mb = 8 * self.max_body_mb if self.max_inflight_mb is None else (
            self.max_inflight_mb)
        return int(mb * 1024 * 1024)

    def write(self, path, *, api_key_env=None, admin_key_env=None):
        """Write the settings to a JSON file that only its owner can read.

        The keys themselves are never written: the file names the environment
        variables that hold them (``api_key_env``, ``admin_key_env``), which
        each worker reads.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write.

        api_key_env : str or None, default=None
            The variable that holds ``api_key``.

        admin_key_env : str or None, default=None
            The variable that holds ``admin_key``.
        """
        values = {k: v for k, v in asdict(self).items()
                  if k not in ("api_key", "admin_key")}
        values["api_key_env"] = api_key_env
        values["admin_key_env"] = admin_key_env
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(values, fh)

    @classmethod
    def read(cls, path):
        """The settings written by :meth:`write`, with the key from its variable.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`write`.

        Returns
        -------
        settings : ServiceSettings
            As written; ``api_key`` and ``admin_key`` are read from the
            variables named there.
        """
        with open(path, encoding="utf-8") as fh:
            values = json.load(fh)
        keys = {name: os.environ.get(env) if env else None for name, env in (
            ("api_key", values.pop("api_key_env", None)),
            ("admin_key", values.pop("admin_key_env", None)))}
        known = {f.name for f in fields(cls)} - set(keys)
        values = {k: v for k, v in values.items() if k in known}
        return cls(**values, **keys)
