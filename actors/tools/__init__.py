"""Command-line tools around sessions: report, calibrate, decode, tail (``python -m actors.tools.<name>``)."""
