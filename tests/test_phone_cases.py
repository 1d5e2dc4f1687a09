"""Every case in ../shared/cases/phone_numbers*.jsonl, through the receiver's own function."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dnc.e164 import REASONS, PhoneNumberProblem, to_e164
from tests.conftest import SHARED_CASES


def _load_cases() -> list[dict[str, Any]]:
    files = sorted(SHARED_CASES.glob("phone_numbers*.jsonl"))
    assert files, f"no phone_numbers*.jsonl under {SHARED_CASES}"
    cases = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                case = json.loads(line)
                case.setdefault("id", f"{path.name}:{number}")
                cases.append(case)
    return cases


CASES = _load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_shared_phone_case(case: dict[str, Any]) -> None:
    if case["expect"] == "accept":
        assert to_e164(case["phone_number"], case["default_region"]).e164 == case["e164"]
    else:
        with pytest.raises(PhoneNumberProblem) as info:
            to_e164(case["phone_number"], case["default_region"])
        assert info.value.reason in REASONS


def test_cases_cover_both_outcomes() -> None:
    assert {c["expect"] for c in CASES} == {"accept", "reject"}
