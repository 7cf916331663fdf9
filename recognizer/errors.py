"""The one exception type of the recognizer: every problem the user can fix, with a clear message."""


class RecognizerError(Exception):
    """A user-caused problem (bad image file, wrong array, missing or corrupt model); the message says what."""
