"""Failures of fitting a model that the user can fix (data that leaves nothing to learn or
calibrate). The CLI reports them like data errors (pipeline.errors.DataError): one paragraph, the same
exit code."""


class ModelDataError(Exception):
    """The data cannot give this model what it needs; the message says why and what to do."""
