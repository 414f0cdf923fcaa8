"""The one error type of the data layer."""

from __future__ import annotations


class DatasetError(ValueError):
    """Bad input data: the message names the file (and line when known) and what is wrong."""
