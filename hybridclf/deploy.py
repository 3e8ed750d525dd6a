"""Deployment files for the prediction service: Docker, Compose, systemd.

:func:`write_deployment` writes into a folder what it takes to run
``hybridclf serve`` on a model directory, with the exact command to use it
(returned, and written to ``README.txt`` in that folder):

- ``"docker"``: a multi-stage ``Dockerfile`` (non-root user, healthcheck, the
  Python and library versions that ``model.json`` records) and a
  ``.dockerignore``; the model is copied into the folder (the build context);
  the ``docker run`` line limits memory, CPUs and processes and drops every
  capability;
- ``"compose"``: the same plus a ``docker-compose.yml`` with a healthcheck and
  the same limits;
- ``"systemd"``: a hardened unit (dedicated user, ``ProtectSystem``,
  ``NoNewPrivileges``, ``MemoryMax``, ``TasksMax``, restart policy) that runs
  the installed ``hybridclf`` on the model where it is.

Files already in the output folder are not overwritten unless ``force``.
"""

import json
import logging
import os
import shutil
import sys
from pathlib import Path

__all__ = ["DEPLOY_TYPES", "write_deployment"]

logger = logging.getLogger(__name__)

#: The kinds of deployment :func:`write_deployment` can write.
DEPLOY_TYPES = ("docker", "compose", "systemd")

_SERVICE = "hybridclf-serve"
_PORT_IN_CONTAINER = 8000
# resource limits of the container and the unit: memory per worker (the model,
# a few images of up to --max-pixels in flight), processes and threads
_MEMORY_GB_PER_WORKER = 2
_PIDS_LIMIT = 256
# the libraries pinned in the image at the versions model.json records (torch
# is left out: predictions run the CNN with onnxruntime)
_PINNED = ("scikit-learn", "imbalanced-learn", "numpy", "scipy", "scikit-image",
           "opencv-contrib-python-headless", "skops", "onnxruntime")


def _limits(workers):
    """(memory in GB, CPUs) for the container and the unit."""
    return _MEMORY_GB_PER_WORKER * int(workers), max(2, int(workers))


def _pins(info):
    """``name==version`` of every pinned library model.json records."""
    versions = info.get("library_versions") or {}
    return [f"{name}=={versions[name]}" for name in _PINNED
            if isinstance(versions.get(name), str)
            and versions[name].replace(".", "").replace("post", "").isalnum()]


def _python_image(info):
    """The python:X.Y-slim image of the Python that saved the model."""
    found = str((info.get("library_versions") or {}).get("python") or "")
    parts = found.split(".")
    if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]):
        return f"python:{parts[0]}.{parts[1]}-slim"
    return "python:3.11-slim"


def _check_path(value, name):
    """Refuse characters that would break or inject into the written files."""
    bad = [c for c in ('"', "\n", "\r", "%", "$", "\\", "`") if c in value]
    if bad:
        raise ValueError(
            f"The '{name}' parameter of write_deployment is {value!r}, which holds "
            f"{bad!r}; these characters are not allowed in the written files. "
            "Move the model to a path without them.")
    return value


def _dockerfile(version, workers, api_key_env, info, allow_pickle):
    cmd = ["hybridclf", "serve", "--model-dir", "/models/model", "--host",
           "0.0.0.0", "--port", str(_PORT_IN_CONTAINER), "--workers", str(workers)]
    if api_key_env:
        cmd += ["--api-key-env", api_key_env]
    if allow_pickle:
        cmd += ["--allow-pickle"]
    cmd = json.dumps(cmd)
    python = _python_image(info)
    pins = " ".join(f'"{p}"' for p in _pins(info))
    return f"""\
# syntax=docker/dockerfile:1
# hybridclf prediction service. Build context: this folder (it holds model/).
# Stage 1 builds a virtual environment; stage 2 runs it as a non-root user.
# The Python and library versions are the ones model.json records.
FROM {python} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Put a hybridclf wheel in wheels/ (`pip wheel --no-deps -w wheels <source>`)
# when hybridclf {version} is not on your package index.
COPY wheels/ /wheels/
RUN pip install --find-links /wheels "hybridclf[serve]=={version}" {pins}

FROM {python}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin \\
        hybridclf
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root --chmod=0755 model/ /models/model/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \\
    HYBRIDCLF_CACHE_DIR=/tmp/hybridclf-cache
USER hybridclf
EXPOSE {_PORT_IN_CONTAINER}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{_PORT_IN_CONTAINER}/ready', timeout=4)"]
CMD {cmd}
"""  # noqa: E501


_DOCKERIGNORE = """\
# only the model and the wheels go into the image
*
!model/
!wheels/
"""


def _compose(port, api_key_env, workers):
    q = json.dumps  # a JSON string is a valid YAML scalar
    health = ("import urllib.request; urllib.request.urlopen("
              f"'http://127.0.0.1:{_PORT_IN_CONTAINER}/ready', timeout=4)")
    lines = [
        "services:",
        f"  {_SERVICE}:",
        "    build:",
        "      context: .",
        "      dockerfile: Dockerfile",
        f"    image: {q(_SERVICE + ':latest')}",
        "    restart: unless-stopped",
        "    ports:",
        f"      - {q(f'127.0.0.1:{port}:{_PORT_IN_CONTAINER}')}",
        "    read_only: true",
        "    tmpfs:",
        "      - \"/tmp\"",
        "    security_opt:",
        "      - \"no-new-privileges:true\"",
        "    cap_drop:",
        "      - \"ALL\"",
        f"    mem_limit: {q(f'{_limits(workers)[0]}g')}",
        f"    cpus: {_limits(workers)[1]}",
        f"    pids_limit: {_PIDS_LIMIT}",
    ]
    if api_key_env:
        value = q("${" + api_key_env + ":?set the API key}")
        lines += ["    environment:", f"      {api_key_env}: {value}"]
    lines += [
        "    healthcheck:",
        f"      test: {q(['CMD', 'python', '-c', health])}",
        "      interval: 30s",
        "      timeout: 5s",
        "      start_period: 60s",
        "      retries: 3",
    ]
    return "\n".join(lines) + "\n"


def _systemd(hybridclf_bin, model_dir, host, port, workers, api_key_env, user,
             allow_pickle=False):
    key = f" --api-key-env {api_key_env}" if api_key_env else ""
    key += " --allow-pickle" if allow_pickle else ""
    memory, _ = _limits(workers)
    env_file = ("EnvironmentFile=/etc/hybridclf/serve.env\n" if api_key_env
                else "")
    return f"""\
[Unit]
Description=hybridclf prediction service ({model_dir})
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
User={user}
Group={user}
ExecStart="{hybridclf_bin}" serve --model-dir "{model_dir}" --host {host} --port {port} --workers {workers}{key}
{env_file}Environment=PYTHONUNBUFFERED=1
Environment=HYBRIDCLF_CACHE_DIR=/var/cache/hybridclf
CacheDirectory=hybridclf
Restart=on-failure
RestartSec=5s
TimeoutStopSec=30s
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
CapabilityBoundingSet=
AmbientCapabilities=
ReadOnlyPaths="{model_dir}"
MemoryMax={memory}G
TasksMax={_PIDS_LIMIT}

[Install]
WantedBy=multi-user.target
"""  # noqa: E501


def _files_of(kind):
    """The names write_deployment writes for ``kind``."""
    names = {"docker": ["Dockerfile", ".dockerignore", "model"],
             "compose": ["Dockerfile", ".dockerignore", "model",
                         "docker-compose.yml"],
             "systemd": [f"{_SERVICE}.service"]}[kind]
    return names + ["README.txt"]


def _check_existing(out, kind, force):
    """Refuse to overwrite earlier files unless ``force``; clear model/ if so."""
    existing = [name for name in _files_of(kind) if (out / name).exists()]
    if existing and not force:
        raise ValueError(
            f"The output folder {os.fspath(out)!r} already holds {existing!r}; "
            "refusing to overwrite them. Pass force=True (--force) to replace "
            "them, or choose another folder.")
    if (out / "model").is_dir() and kind != "systemd":
        shutil.rmtree(out / "model")  # no file of an older model is left in it


def write_deployment(kind, output_dir, model_dir, *, host="127.0.0.1", port=8000,
                     workers=1, api_key_env=None, user="hybridclf",
                     allow_pickle=False, force=False):
    """Write the files that deploy ``hybridclf serve`` on a model directory.

    Parameters
    ----------
    kind : {"docker", "compose", "systemd"}
        What to write (see the module docstring).

    output_dir : str or os.PathLike
        Folder to write into; created if missing.

    model_dir : str or os.PathLike
        The model directory to serve. Docker and Compose copy it into
        ``output_dir/model``; the systemd unit refers to it where it is.

    host : str, default="127.0.0.1"
        Address the systemd service binds (containers bind 0.0.0.0 inside and
        publish on 127.0.0.1 of the host).

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

    Returns
    -------
    result : dict
        ``files`` (list of written paths) and ``command`` (the shell command
        that builds and starts the service).

    Raises
    ------
    ValueError
        When ``kind`` is unknown, a path holds characters that would break
        the files, ``output_dir`` holds earlier files and not ``force``, or
        the model is a pickle and not ``allow_pickle``.
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
    from . import __version__

    _check_arguments(kind, api_key_env, user)
    info = _servable_model_info(model_dir, allow_pickle)
    model_dir = _check_path(os.path.abspath(os.fspath(model_dir)), "model_dir")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_existing(out, kind, force)
    files = []
    if kind in ("docker", "compose"):
        command, folder = _write_container(
            kind, out, model_dir, files, version=__version__, info=info, port=port,
            workers=workers, api_key_env=api_key_env, allow_pickle=allow_pickle)
    else:
        command, folder = _write_systemd(
            out, model_dir, files, host=host, port=port, workers=workers,
            api_key_env=api_key_env, user=user, allow_pickle=allow_pickle)
    readme = _readme(kind, model_dir, command, folder, version=__version__,
                     info=info, port=port, api_key_env=api_key_env)
    _write(files, out / "README.txt", readme)
    logger.info("Wrote a %s deployment to %s", kind, out)
    return {"files": files, "command": command}


def _check_arguments(kind, api_key_env, user):
    """Refuse an unknown ``kind`` and names that would break the files."""
    if kind not in DEPLOY_TYPES:
        raise ValueError(
            "The 'kind' parameter of write_deployment must be one of "
            f"{list(DEPLOY_TYPES)}. Got {kind!r} instead.")
    if api_key_env is not None and not api_key_env.replace("_", "").isalnum():
        raise ValueError(
            "The 'api_key_env' parameter of write_deployment must be an "
            f"environment variable name (letters, digits, _). Got {api_key_env!r}.")
    if not str(user).replace("-", "").replace("_", "").isalnum():
        raise ValueError("The 'user' parameter of write_deployment must be a user "
                         f"name (letters, digits, - and _). Got {user!r} instead.")


def _servable_model_info(model_dir, allow_pickle):
    """The model's ``model.json``; refuses a pickle unless ``allow_pickle``."""
    from .persistence import read_model_info

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


def _write_container(kind, out, model_dir, files, *, version, info, port, workers,
                     api_key_env, allow_pickle):
    """Copy the model and write the Docker files; (start command, folder)."""
    shutil.copytree(model_dir, out / "model")
    (out / "wheels").mkdir(exist_ok=True)
    _write(files, out / "Dockerfile",
           _dockerfile(version, workers, api_key_env, info, allow_pickle))
    _write(files, out / ".dockerignore", _DOCKERIGNORE)
    folder = _check_path(str(out.resolve()), "output_dir")
    if kind == "compose":
        _write(files, out / "docker-compose.yml",
               _compose(port, api_key_env, workers))
        return (f'docker compose -f "{folder}/docker-compose.yml" up -d --build',
                folder)
    run_key = f" -e {api_key_env}" if api_key_env else ""
    memory, cpus = _limits(workers)
    command = (f'docker build -t {_SERVICE} "{folder}" && docker run -d '
               f"--name {_SERVICE} --restart unless-stopped --read-only "
               f"--tmpfs /tmp --memory {memory}g --cpus {cpus} "
               f"--pids-limit {_PIDS_LIMIT} --cap-drop ALL "
               "--security-opt no-new-privileges "
               f"-p 127.0.0.1:{port}:{_PORT_IN_CONTAINER}"
               f"{run_key} {_SERVICE}")
    return command, folder


def _write_systemd(out, model_dir, files, *, host, port, workers, api_key_env, user,
                   allow_pickle):
    """Write the systemd unit; (install command, folder)."""
    exe = Path(sys.executable).with_name("hybridclf")
    hybridclf_bin = _check_path(
        str(exe) if exe.exists() else shutil.which("hybridclf") or str(exe),
        "hybridclf executable")
    if model_dir.startswith(("/tmp/", "/var/tmp/")):
        logger.warning("The model %s is under a temporary folder, which the "
                       "unit's PrivateTmp=yes hides from the service; move it "
                       "to a lasting place such as /srv/hybridclf.", model_dir)
    unit = f"{_SERVICE}.service"
    _write(files, out / unit, _systemd(hybridclf_bin, model_dir, host, port, workers,
                                       api_key_env, user, allow_pickle))
    folder = _check_path(str(out.resolve()), "output_dir")
    command = (f"sudo useradd --system --no-create-home --shell "
               f"/usr/sbin/nologin {user}; sudo install -m 0644 "
               f'"{folder}/{unit}" /etc/systemd/system/{unit} && '
               f"sudo systemctl daemon-reload && "
               f"sudo systemctl enable --now {unit}")
    return command, folder


def _readme(kind, model_dir, command, folder, *, version, info, port, api_key_env):
    """The text of README.txt: how to start and check the service."""
    notes = [f"hybridclf {kind} deployment of the model {model_dir}", "",
             "Start it with:", "", f"    {command}", ""]
    if kind in ("docker", "compose"):
        notes += ["Put a hybridclf wheel in wheels/ first when hybridclf "
                  f"{version} is not on your package index:",
                  f'    pip wheel --no-deps -w "{folder}/wheels" <hybridclf source>',
                  ""]
    if api_key_env:
        where = ("/etc/hybridclf/serve.env (mode 0600)" if kind == "systemd"
                 else "your shell's environment")
        notes += [f"Set {api_key_env}=<key> in {where}; clients send it in the "
                  "X-API-Key header.", ""]
    pins = _pins(info)
    if kind == "systemd" and pins:
        notes += ["The model was saved with these versions; install them beside "
                  "hybridclf:", "    " + " ".join(pins), ""]
    notes += [f"Check it with: curl http://127.0.0.1:{port}/health", ""]
    return "\n".join(notes)
