"""Writing a deployment: :func:`write_deployment`.

It checks the arguments and the model, refuses to overwrite earlier files
unless ``force``, copies the model (Docker, Compose) or refers to it where it
is (systemd), writes the files (``_templates``) and ``README.txt``, and
returns the command that starts the service.
"""

import logging
import os
import shutil
import stat
import sys
from pathlib import Path

from ..utils._public_host import warn_public_host
from ._templates import (
    _DOCKERIGNORE,
    _PIDS_LIMIT,
    _PORT_IN_CONTAINER,
    _SERVICE,
    _compose,
    _dockerfile,
    _limits,
    _pins,
    _systemd,
    _wheels_readme,
)

__all__ = ["DEPLOY_TYPES", "write_deployment"]

logger = logging.getLogger(__name__)

#: The kinds of deployment :func:`write_deployment` can write.
DEPLOY_TYPES = ("docker", "compose", "systemd")
_LOOPBACK = ("127.", "::1", "localhost")


def _check_path(value, name):
    """Refuse characters that would break or inject into the written files."""
    bad = [c for c in ('"', "\n", "\r", "%", "$", "\\", "`") if c in value]
    if bad:
        raise ValueError(
            f"The '{name}' parameter of write_deployment is {value!r}, which holds "
            f"{bad!r}; these characters are not allowed in the written files. "
            "Move the model to a path without them.")
    return value


def _check_host(host, parameter="host", wildcard=False):
    """Refuse an address that would break the unit's command line or ``-p``."""
    host = str(host)
    allowed = ".-:*" if wildcard else ".-:"
    if not host or host.startswith("-") or not all(
            c.isascii() and (c.isalnum() or c in allowed) for c in host):
        raise ValueError(
            f"The {parameter!r} parameter of write_deployment must be an IP address "
            f"or a host name (letters, digits, {', '.join(map(repr, allowed))}). "
            f"Got {host!r} instead.")
    return host


def _published(host, port):
    """Docker's ``-p`` / Compose ``ports`` entry: ``port`` on ``host``."""
    address = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"{address}:{port}:{_PORT_IN_CONTAINER}"


def _files_of(kind):
    """The names write_deployment writes for ``kind``."""
    names = {"docker": ["Dockerfile", ".dockerignore", "model"],
             "compose": ["Dockerfile", ".dockerignore", "model",
                         "docker-compose.yml"],
             "systemd": [f"{_SERVICE}.service"]}[kind]
    return names + ["README.txt"]


def _check_existing(out, kind, force, model_dir):
    """Refuse to overwrite earlier files unless ``force``; clear model/ if so.

    Returns whether the model is to be copied into ``out/model``: not when
    ``model_dir`` is that copy (a deployment written again with other
    options), which is then kept as it is.
    """
    existing = [name for name in _files_of(kind) if (out / name).exists()]
    if existing and not force:
        raise ValueError(
            f"The output folder {os.fspath(out)!r} already holds {existing!r}; "
            "refusing to overwrite them. Pass force=True (--force) to replace "
            "them, or choose another folder.")
    if kind == "systemd":
        return False
    copy = (out / "model").resolve()
    model = Path(model_dir).resolve()
    if model == copy:
        return False
    if copy in model.parents:
        raise ValueError(
            f"The 'model_dir' parameter of write_deployment is {model_dir!r}, "
            f"inside {os.fspath(out / 'model')!r}, the model copy this "
            "deployment replaces. Move the model out of the output folder, or "
            "choose another output folder.")
    if copy.is_dir():
        shutil.rmtree(copy)  # no file of an older model is left in it
    return True


def write_deployment(kind, output_dir, model_dir, *, host="127.0.0.1", port=8000,
                     workers=1, api_key_env=None, user="hybridclf",
                     allow_pickle=False, force=False, allowed_hosts=None,
                     admin_key_env=None):
    """Write the files that deploy ``hybridclf serve`` on a model directory.

    Parameters
    ----------
    kind : {"docker", "compose", "systemd"}
        What to write (see the module docstring).

    output_dir : str or os.PathLike
        Folder to write into; created if missing.

    model_dir : str or os.PathLike
        The model directory to serve. Docker and Compose copy it into
        ``output_dir/model`` (``output_dir/model`` itself, the copy of an
        earlier deployment, is kept as it is); the systemd unit refers to it
        where it is.

    host : str, default="127.0.0.1"
        Address the systemd service binds; containers bind 0.0.0.0 inside and
        publish ``port`` on this address of the host (0.0.0.0: other machines
        reach it).

    port : int, default=8000
        Port on the host.

    workers : int, default=1
        uvicorn worker processes.

    api_key_env : str or None, default=None
        Name of the environment variable holding the API key; the key itself
        is never written into the files.

    user : str, default="hybridclf"
        The dedicated system user of the systemd service.

    allow_pickle : bool, default=False
        Serve a pickled model (``--allow-pickle``; runs code from the file).

    force : bool, default=False
        Overwrite deployment files already in ``output_dir`` (refused
        otherwise).

    allowed_hosts : list of str or None, default=None
        The names clients call the service by (``--allowed-hosts`` of
        ``hybridclf serve``; others are answered 400, against DNS
        rebinding). None: for containers published on a loopback ``host``,
        only this machine's names (``--allowed-hosts localhost``: the
        container sees the requests arrive on its own address, so the
        service's loopback default would not apply); else none, and a public
        deployment should list its names.

    admin_key_env : str or None, default=None
        Name of the environment variable holding the admin key, passed to
        ``hybridclf serve --admin-key-env`` as ``api_key_env`` is to
        ``--api-key-env`` (the key itself is never written into the files):
        ``POST /admin/reload`` then needs it in ``X-Admin-Key`` from any
        address, and the API key opens no ``/admin`` path. None: ``/admin``
        answers only the service's own machine (for a container, only a
        request from inside it). Must differ from ``api_key_env`` (``serve``
        refuses an admin key equal to the API key).

    Returns
    -------
    result : dict
        ``files`` (list of written paths) and ``command`` (the shell command
        that builds and starts the service).

    Raises
    ------
    ValueError
        When ``kind`` is unknown, a path or a variable name holds characters
        that would break the files, ``model_dir`` is inside
        ``output_dir/model``, ``admin_key_env`` is ``api_key_env``,
        ``output_dir`` holds earlier files and not ``force``, or the model is
        a pickle and not ``allow_pickle``.
    ModelLoadError
        When ``model_dir`` is not a model directory.

    Examples
    --------
    >>> from hybridclf.deploy import write_deployment
    >>> write_deployment("kubernetes", "out", "model")
    Traceback (most recent call last):
    ...
    ValueError: The 'kind' parameter of write_deployment must be one of ...
    """
    from .. import __version__

    _check_arguments(kind, api_key_env, user, admin_key_env)
    host = _check_host(host)
    allowed_hosts = [_check_host(h, "allowed_hosts", wildcard=True)
                     for h in allowed_hosts or ()]
    warn_public_host(logger, host, api_key_env=api_key_env,
                     admin_key_env=admin_key_env,
                     subject="This deployment serves")
    info = _servable_model_info(model_dir, allow_pickle)
    model_dir = _check_path(os.path.abspath(os.fspath(model_dir)), "model_dir")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    copy_model = _check_existing(out, kind, force, model_dir)
    files = []
    if kind in ("docker", "compose"):
        command, folder = _write_container(
            kind, out, model_dir if copy_model else None, files,
            version=__version__, info=info,
            published=_published(host, port), workers=workers,
            api_key_env=api_key_env, admin_key_env=admin_key_env,
            allow_pickle=allow_pickle, allowed_hosts=allowed_hosts or (
                ["localhost"] if host.startswith(_LOOPBACK) else None))
    else:
        command, folder = _write_systemd(
            out, model_dir, files, host=host, port=port, workers=workers,
            api_key_env=api_key_env, admin_key_env=admin_key_env, user=user,
            allow_pickle=allow_pickle, allowed_hosts=allowed_hosts)
    readme = _readme(kind, model_dir, command, folder, version=__version__,
                     info=info, url=_url(host, port), api_key_env=api_key_env,
                     admin_key_env=admin_key_env)
    _write(files, out / "README.txt", readme)
    logger.info("Wrote a %s deployment to %s", kind, out)
    return {"files": files, "command": command}


def _check_arguments(kind, api_key_env, user, admin_key_env=None):
    """Refuse an unknown ``kind``, names that would break the files, and one
    variable for both keys."""
    if kind not in DEPLOY_TYPES:
        raise ValueError(
            "The 'kind' parameter of write_deployment must be one of "
            f"{list(DEPLOY_TYPES)}. Got {kind!r} instead.")
    for name, value in (("api_key_env", api_key_env),
                        ("admin_key_env", admin_key_env)):
        if value is not None and not (
                value.isascii() and value.replace("_", "").isalnum()):
            raise ValueError(
                f"The {name!r} parameter of write_deployment must be an "
                f"environment variable name (letters, digits, _). Got {value!r}.")
    if admin_key_env is not None and admin_key_env == api_key_env:
        # serve would refuse it at every start (an admin key equal to the API
        # key); the names are all there is to compare here
        raise ValueError(
            f"The 'admin_key_env' parameter of write_deployment (--admin-key-env) "
            f"names {admin_key_env!r}, the API key's variable: every prediction "
            "client could reload the model, and 'hybridclf serve' refuses an "
            "admin key equal to the API key. Name a variable of its own, such as "
            "HYBRIDCLF_ADMIN_KEY.")
    if not str(user).replace("-", "").replace("_", "").isalnum():
        raise ValueError("The 'user' parameter of write_deployment must be a user "
                         f"name (letters, digits, - and _). Got {user!r} instead.")


def _servable_model_info(model_dir, allow_pickle):
    """The model's ``model.json``; refuses a pickle unless ``allow_pickle``."""
    from ..persistence import read_model_info

    info = read_model_info(model_dir)  # a clear error now, not in production
    if info.get("model_format") == "pickle" and not allow_pickle:
        raise ValueError(
            f"The model in {os.fspath(model_dir)!r} is a pickle, which the service "
            "loads only with --allow-pickle (it runs code from the file). Pass "
            "allow_pickle=True (--allow-pickle) if you trust it, or save it with "
            "model_format='skops'.")
    return info


def _write(files, path, text):
    path.write_text(text, encoding="utf-8")
    files.append(str(path))


def _write_container(kind, out, model_dir, files, *, version, info, published,
                     workers, api_key_env, allow_pickle, allowed_hosts,
                     admin_key_env=None):
    """Copy the model (unless None: it is ``out/model``) and write the Docker
    files; (start command, folder)."""
    if model_dir is not None:
        shutil.copytree(model_dir, out / "model")
    (out / "wheels").mkdir(exist_ok=True)
    _write(files, out / "wheels" / "README.txt", _wheels_readme(version))
    _write(files, out / "Dockerfile",
           _dockerfile(version, workers, api_key_env, info, allow_pickle,
                       allowed_hosts, admin_key_env))
    _write(files, out / ".dockerignore", _DOCKERIGNORE)
    folder = _check_path(str(out.resolve()), "output_dir")
    if kind == "compose":
        _write(files, out / "docker-compose.yml",
               _compose(published, api_key_env, workers, admin_key_env))
        return (f'docker compose -f "{folder}/docker-compose.yml" up -d --build',
                folder)
    run_key = "".join(f" -e {name}" for name in (api_key_env, admin_key_env)
                      if name)
    memory, cpus = _limits(workers)
    command = (f'docker build -t {_SERVICE} "{folder}" && docker run -d '
               f"--name {_SERVICE} --restart unless-stopped --read-only "
               f"--tmpfs /tmp --memory {memory}g --cpus {cpus} "
               f"--pids-limit {_PIDS_LIMIT} --cap-drop ALL "
               "--security-opt no-new-privileges "
               f"-p {published}"
               f"{run_key} {_SERVICE}")
    return command, folder


def _write_systemd(out, model_dir, files, *, host, port, workers, api_key_env, user,
                   allow_pickle, allowed_hosts, admin_key_env=None):
    """Write the systemd unit; (install command, folder)."""
    exe = Path(sys.executable).with_name("hybridclf")
    hybridclf_bin = _check_path(
        str(exe) if exe.exists() else shutil.which("hybridclf") or str(exe),
        "hybridclf executable")
    if model_dir.startswith(("/tmp/", "/var/tmp/")):
        logger.warning("The model %s is under a temporary folder, which the "
                       "unit's PrivateTmp=yes hides from the service; move it "
                       "to a lasting place such as /srv/hybridclf.", model_dir)
    _warn_unreachable(user, model=model_dir, executable=hybridclf_bin,
                      interpreter=os.path.realpath(sys.executable))
    unit = f"{_SERVICE}.service"
    _write(files, out / unit, _systemd(hybridclf_bin, model_dir, host, port, workers,
                                       api_key_env, user, allow_pickle,
                                       allowed_hosts, admin_key_env))
    folder = _check_path(str(out.resolve()), "output_dir")
    command = (f"sudo useradd --system --no-create-home --shell "
               f"/usr/sbin/nologin {user}; sudo install -m 0644 "
               f'"{folder}/{unit}" /etc/systemd/system/{unit} && '
               f"sudo systemctl daemon-reload && "
               f"sudo systemctl enable --now {unit}")
    return command, folder


def _blocked_for_others(path):
    """(path, what others may not do) of the first folder on ``path`` others
    cannot pass, or of ``path`` or a file in it they cannot read; or None."""
    path = Path(path)
    if not path.exists():
        return None
    for folder in reversed(path.parents):  # from the root down
        if not folder.stat().st_mode & stat.S_IXOTH:
            return folder, "pass"
    inside = sorted(path.iterdir()) if path.is_dir() else []
    for item in [path, *inside]:
        mode = item.stat().st_mode
        if not mode & stat.S_IROTH or (item.is_dir() and not mode & stat.S_IXOTH):
            return item, "list" if item.is_dir() else "read"
    return None


_REACHABLE_PLACES = {
    "model": "Put the model in a lasting folder others can read, such as "
             "/srv/hybridclf",
    "executable": "Install hybridclf where others can run it, such as a "
                  "virtual environment of the system's Python: "
                  "/usr/bin/python3 -m venv /opt/hybridclf",
}


def _warn_unreachable(user, model, executable, interpreter):
    """Warn of a path the unit's user cannot reach through the permissions
    for others (a home folder of mode 0700 or 0750, a model saved under
    umask 077): the service would fail at its start."""
    for what, paths in (("model", [model]),
                        ("executable", [executable, interpreter])):
        for path in paths:
            blocked = _blocked_for_others(path)
            if blocked is None:
                continue
            where, verb = blocked
            logger.warning(
                "The unit runs the service as the user %r, which cannot reach "
                "%s: %s is %s (others may not %s it), so the service would "
                "fail at its start, unless a group or an ACL lets %r in. %s, "
                "or open the permissions.", user, path, where,
                stat.filemode(where.stat().st_mode), verb, user,
                _REACHABLE_PLACES[what])
            break  # one warning for the model, one for the executable


def _url(host, port):
    """Where the service answers on this machine (a wildcard: on loopback)."""
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _readme(kind, model_dir, command, folder, *, version, info, url, api_key_env,
            admin_key_env=None):
    """The text of README.txt: how to start and check the service."""
    notes = [f"hybridclf {kind} deployment of the model {model_dir}", "",
             "Start it with:", "", f"    {command}", ""]
    if kind in ("docker", "compose"):
        notes += ["Put a hybridclf wheel in wheels/ first when hybridclf "
                  f"{version} is not on your package index:",
                  f'    pip wheel --no-deps -w "{folder}/wheels" <hybridclf source>',
                  ""]
    where = ("/etc/hybridclf/serve.env (mode 0600)" if kind == "systemd"
             else "your shell's environment")
    if api_key_env:
        notes += [f"Set {api_key_env}=<key> in {where}; clients send it in the "
                  "X-API-Key header. It opens no /admin path."]
        if not admin_key_env:
            notes += ["POST /admin/reload answers only requests from the "
                      "service's own machine: write the files again with "
                      "--admin-key-env VAR to reload from elsewhere (see "
                      "docs/service.md)."]
        notes += [""]
    if admin_key_env:
        notes += [f"Set {admin_key_env}=<admin key> in {where}, a value other "
                  "than the API key's (the service refuses the same one); "
                  "POST /admin/reload needs it in the X-Admin-Key header, from "
                  "any address, and loads the model from a path on the "
                  "server: keep it for those who may change the model.", ""]
    pins = _pins(info)
    if kind == "systemd" and pins:
        notes += ["The model was saved with these versions; install them beside "
                  "hybridclf:", "    " + " ".join(pins), ""]
    if kind == "systemd":
        notes += ["Load a model retrained into the same folder, without downtime:",
                  f"    sudo systemctl reload {_SERVICE}.service", ""]
    notes += [f"Check it with: curl {url}/health", ""]
    return "\n".join(notes)
