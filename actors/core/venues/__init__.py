"""Wire codecs for each exchange: pure functions from frame bytes to decoded events."""

from actors.core.vocabulary import RestartCause


class FrameError(ValueError):
    """A frame that cannot be decoded: malformed JSON, a missing field, a bad number, a bad level."""

    restart_cause = RestartCause.ERROR
