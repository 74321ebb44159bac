"""``python -m actors.session --help``: every option says its default, the exit codes and two examples."""

from __future__ import annotations

import re
import signal

import pytest

from actors.cli import build_parser, main
from actors.conventions import ExitCode


@pytest.fixture
def help_text(capsys) -> str:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # main() installs its own
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["--help"])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_every_option_says_its_default_or_the_config_key_it_overrides():
    for action in build_parser()._actions:
        if "-h" in action.option_strings:
            continue
        text = action.help or ""
        assert "default" in text or "required" in text, action.option_strings
        assert "``" not in text and "%" not in text
        key = re.search(r"overrides (\w+\.\w+) \(default ", text)
        assert key is not None or action.dest in ("config", "session_id", "virtual_time"), action.option_strings


def test_help_shows_defaults_exit_codes_and_two_examples(help_text):
    assert "``" not in help_text
    assert "overrides session.market (default sim)" in " ".join(help_text.split())
    assert "overrides session.seed (default 0)" in " ".join(help_text.split())
    assert "overrides chaos.kill_every_s (default 0: off)" in " ".join(help_text.split())
    codes = help_text.split("exit codes:\n", 1)[1].split("\n\n", 1)[0]
    listed = [int(m) for m in re.findall(r"^  (\d+)\s", codes, flags=re.M)]
    assert listed == [code.value for code in ExitCode] == [0, 1, 2, 130]
    assert "a second Ctrl-C / SIGTERM" in codes and "bad input" in codes
    examples = help_text.split("examples:\n", 1)[1]
    commands = [line for line in examples.splitlines() if line.startswith("  python -m actors.session --config")]
    assert len(commands) == 2 and "--market sim --virtual-time" in commands[1]


def test_chaos_help_names_the_actors_it_kills(help_text):
    words = " ".join(help_text.split())
    assert "kill one of the actors in chaos.actors" in words
    assert "by default the feeds: feed:upbit, feed:binance" in words
