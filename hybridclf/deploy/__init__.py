"""Deployment files for the prediction service: Docker, Compose, systemd.

:func:`write_deployment` writes into a folder what it takes to run
``hybridclf serve`` on a model directory, with the exact command to use it
(returned, and written to ``README.txt`` in that folder):

- ``"docker"``: a multi-stage ``Dockerfile`` (non-root user, healthcheck, the
  Python and library versions that ``model.json`` records, no torch: the
  model's CNN runs as an ONNX graph) and a
  ``.dockerignore``; the model is copied into the folder (the build context);
  the ``docker run`` line limits memory, CPUs and processes and drops every
  capability;
- ``"compose"``: the same plus a ``docker-compose.yml`` with a healthcheck and
  the same limits;
- ``"systemd"``: a hardened unit (dedicated user, ``ProtectSystem``,
  ``NoNewPrivileges``, ``MemoryMax``, ``TasksMax``, restart policy) that runs
  the installed ``hybridclf`` on the model where it is.

Files already in the output folder are not overwritten unless ``force``.

The package's modules, one concept each:

- ``_write``: :func:`write_deployment`, its checks and ``README.txt``;
- ``_templates``: the texts of the files (Dockerfile, ``.dockerignore``,
  ``docker-compose.yml``, the systemd unit) and the limits they set.
"""

from ._write import DEPLOY_TYPES, write_deployment

__all__ = ["DEPLOY_TYPES", "write_deployment"]
