"""User-facing errors.

Every mistake a user can make (a wrong recipe name, a bad override, an unreadable video, a
corrupt checkpoint) raises a subclass of :class:`MondeError` whose message says what went
wrong *and what to do*. The command line prints these messages without a traceback; anything
else that escapes is a bug in monde and keeps its traceback.
"""

from __future__ import annotations


class MondeError(Exception):
    """Base class for errors caused by user input, printed without a traceback."""


class ConfigError(MondeError):
    """A recipe, override key or value that does not fit the typed config."""


class DataError(MondeError):
    """Input data that cannot be read or does not fit the model (video, sensors, episodes)."""


class CheckpointError(MondeError):
    """A checkpoint or model folder that is missing, corrupt, or belongs to another run."""
