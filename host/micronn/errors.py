"""The one exception type micronn raises for user-facing problems."""


class MicronnError(Exception):
    """A problem with the user's input, model, board or environment.

    The CLI prints it as ``micronn: error: <message>`` and exits with status 1;
    anything else that escapes is a bug and keeps its traceback.
    """
