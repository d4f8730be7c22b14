"""The texts a user reads: strings.json as Home Assistant's validator wants it, and complete.

translations/en.json is kept in step with strings.json; no text holds `<` or `>` (the
validator reads them as HTML); every translation key the code raises or shows exists.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

COMPONENT = Path(__file__).parent.parent / "custom_components" / "meterlake"


def _strings() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((COMPONENT / "strings.json").read_text(encoding="utf-8"))
    return loaded


def _texts(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _texts(value, f"{path}.{key}")]
    return [(path, node)] if isinstance(node, str) else []


def test_english_translation_is_strings_json() -> None:
    english = json.loads((COMPONENT / "translations" / "en.json").read_text(encoding="utf-8"))
    assert english == _strings()


@pytest.mark.parametrize("bracket", ["<", ">"])
def test_no_text_holds_an_angle_bracket(bracket: str) -> None:
    assert [path for path, text in _texts(_strings()) if bracket in text] == []


def test_every_raised_translation_key_is_translated() -> None:
    code = "\n".join(path.read_text(encoding="utf-8") for path in COMPONENT.rglob("*.py"))
    raised = set(re.findall(r'translation_key="([a-z0-9_]+)"', code))
    strings = _strings()
    known = set(strings["exceptions"]) | set(strings["issues"]) | set(strings["selector"])
    assert sorted(raised - known - _entity_keys(strings)) == []


def _entity_keys(strings: dict[str, Any]) -> set[str]:
    return {key for platform in strings["entity"].values() for key in platform}


def test_every_action_field_has_a_name_and_a_description() -> None:
    for action, text in _strings()["services"].items():
        assert text["name"] and text["description"], action
        for field, about in text.get("fields", {}).items():
            assert about.get("name") and about.get("description"), (action, field)
