"""Every refusal has its words, names a config key that exists, is documented among the KPI's refusals, and a
label this version does not know (a newer file's) is still described."""

import re
from pathlib import Path

import attrs
import pytest

from actors.config import RiskConfig, StrategyConfig
from actors.core.refusals import Refusal, words_of

KPIS_DOC = Path(__file__).resolve().parents[2] / "docs" / "kpis.md"
SECTIONS = {"strategy": StrategyConfig, "risk": RiskConfig}


@pytest.mark.parametrize("refusal", list(Refusal))
def test_every_refusal_has_a_label_short_words_and_a_sentence(refusal):
    assert refusal.label == str(refusal) and re.fullmatch(r"[a-z_]+", refusal.label)
    assert refusal.short and refusal.sentence != refusal.label.replace("_", " ")
    assert words_of(refusal.label) == words_of(refusal)
    if refusal.setting is not None:
        section, key = refusal.setting.split(".")
        assert key in attrs.fields_dict(SECTIONS[section])


def test_the_kpi_documentation_names_every_label():
    row = next(line for line in KPIS_DOC.read_text().splitlines() if line.startswith("| `refusals` |"))
    assert {r.label for r in Refusal} <= set(re.findall(r"`([a-z_]+)`", row))


def test_a_label_this_version_does_not_know_is_its_own_words():
    words = words_of("something_new")
    assert (words.short, words.sentence, words.setting) == ("something_new", "something new", None)
