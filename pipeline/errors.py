"""Expected failures. The CLI prints their message as one paragraph, without a traceback
(unless --debug), and exits non-zero. Anything else is a bug and shows its traceback."""


class PipelineError(Exception):
    """A failure the user can fix: the message says what failed, where, and how to fix it."""

    exit_code = 1


class ConfigError(PipelineError):
    exit_code = 2


class DataError(PipelineError):
    exit_code = 3


class ModelNotFoundError(PipelineError):
    exit_code = 4


class RunLockedError(PipelineError):
    exit_code = 5


class EngineMemoryError(PipelineError):
    """The embedded engine needed more memory than data.engine_memory_gb allows."""

    exit_code = 6
