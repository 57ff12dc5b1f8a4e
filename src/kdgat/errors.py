"""The one exception type a user should ever see as a message, not a traceback."""


class KdgatError(ValueError):
    """Bad input or a missing prerequisite: printed as one line, exit status 1.

    Raise it with a message that names the bad value and says what is allowed
    or what to do next. Anything else that escapes is a bug and keeps its
    traceback.
    """
