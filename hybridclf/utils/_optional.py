"""Import optional dependencies with a message that says how to install them."""

import importlib

from ..exceptions import MissingDependencyError

# module name -> (pip extra of hybridclf that provides it)
_EXTRAS = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "matplotlib": "plot",
    "dask": "scale",
    "distributed": "scale",
    "pyarrow": "scale",
}


def import_or_raise(module, feature):
    """Import and return ``module``, or raise an ImportError that says what to install.

    Parameters
    ----------
    module : str
        Importable module name, for example ``"matplotlib.pyplot"``.

    feature : str
        What needs it, for the message (``"ConfusionMatrixDisplay"``).

    Returns
    -------
    module : module
        The imported module.

    Raises
    ------
    MissingDependencyError
        When the module is not installed (an ``ImportError``); the message
        names the extra to install.

    Examples
    --------
    >>> from hybridclf.utils import import_or_raise
    >>> import_or_raise("json", "tests").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top)
        how = (
            f"pip install 'hybridclf[{extra}]'" if extra else f"pip install {top}"
        )
        raise MissingDependencyError(
            f"{feature} needs the optional dependency {top!r}, which is not "
            f"installed. Install it with: {how}"
        ) from exc
