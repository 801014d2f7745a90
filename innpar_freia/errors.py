"""Exceptions for problems a user can fix; the CLI shows their message without a traceback."""

from __future__ import annotations


class InnparError(Exception):
    """Base class of every error caused by user input (files, options, configurations)."""


class ConfigError(InnparError, ValueError):
    """An invalid configuration value, preset or key."""


class DataError(InnparError, ValueError):
    """A data file that is missing, corrupt, of another schema, or holds invalid values."""


class CheckpointError(InnparError, ValueError):
    """A checkpoint that is missing, corrupt or from another model."""


class RunDirError(InnparError, ValueError):
    """A run directory that cannot be used as asked (it holds a run, or holds none to resume)."""


class TrainingDiverged(InnparError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
