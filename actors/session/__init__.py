"""One PAPER session: ``run_session`` runs the actor tree in the current Trio run and returns its
``SessionResult`` (docs/architecture.md); ``python -m actors.session`` is its command line (``actors.cli``)."""

from actors.session.run import EXIT_FAILED, EXIT_OK, SessionResult, run_session

__all__ = ["EXIT_FAILED", "EXIT_OK", "SessionResult", "run_session"]
