"""Whether a service's address is public, and what it lacks there.

``hybridclf serve`` warns when it starts and ``hybridclf deploy`` when it
writes the files: both with the lines of :func:`warn_public_host`, so that
the deployer reads the same advice before the service runs as in its log.
Dependency-free, so that ``deploy`` needs no FastAPI to say it.
"""

import ipaddress

__all__ = ["is_loopback", "warn_public_host"]


def is_loopback(address):
    """Whether ``address`` (an IP address or name) is this machine's loopback."""
    if address in ("localhost",):
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def warn_public_host(logger, host, *, api_key_env, admin_key_env,
                     subject="Serving"):
    """Log one warning for each key that a service on a public ``host`` lacks.

    Without an API key anyone who can reach the address uses the model (and
    writes to its feedback folder, when it has one); without an admin key
    ``POST /admin/reload`` answers only the service's own machine (403 to
    every other address and to every request through a proxy), which a
    deployer who binds ``0.0.0.0`` to reload from elsewhere otherwise
    learned only from that 403. ``host`` may be a name or an address; a
    loopback one (``127.0.0.1``, ``::1``, ``localhost``) gets no warning.

    Parameters
    ----------
    logger : logging.Logger
        The logger that says it (the caller's).
    host : str
        The address the service binds.
    api_key_env, admin_key_env : str or None
        The names of the keys' environment variables; None when none.
    subject : str, default="Serving"
        What starts each line: ``"Serving"`` (``serve``) or ``"This
        deployment serves"`` (``deploy``).
    """
    host = str(host)
    if is_loopback(host):
        return
    if api_key_env is None:
        logger.warning(
            "%s on %s without an API key: anyone who can reach this address "
            "can use the model and, with a feedback folder, write to it. Set "
            "one with --api-key-env (api_key_env), or bind 127.0.0.1 behind a "
            "proxy that authenticates.", subject, host)
    if admin_key_env is None:
        logger.warning(
            "%s on %s without an admin key: POST /admin/reload answers only "
            "this machine (403 to other addresses and through a proxy). Set "
            "one with --admin-key-env (admin_key_env) to reload from "
            "elsewhere, or reload with SIGHUP.", subject, host)
