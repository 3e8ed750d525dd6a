"""Helpers shared by hybridclf's estimators (validation, parallel loops, checks)."""

from ._optional import import_or_raise

__all__ = ["import_or_raise"]
