"""make test's sharing of the suite between two xdist workers (tests/scheduling.py), driven
the way pytest-xdist's controller drives a scheduler: two workers report the same collection,
then ``schedule()`` hands out the first units."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from tests.scheduling import ModuleScheduling, longest_first


class _Config:
    """The little of ``pytest.Config`` a scheduler reads: ``-n 2``, xdist's defaults."""

    def __init__(self) -> None:
        self.option = SimpleNamespace(loadscopereorder=True, maxschedchunk=None)

    def getvalue(self, name: str) -> Any:
        return {"tx": ["2*popen"]}[name]


@dataclass
class _Worker:
    """A worker that keeps the test indexes it is sent."""

    name: str
    sent: list[int] = field(default_factory=list)
    shutting_down: bool = False

    @property
    def gateway(self) -> SimpleNamespace:
        return SimpleNamespace(id=self.name)

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.extend(indexes)

    def shutdown(self) -> None:
        self.shutting_down = True

    def __hash__(self) -> int:
        return id(self)


@dataclass
class _Item:
    nodeid: str


COLLECTED = [
    "tests/flows/test_a.py::test_1",
    "tests/flows/test_a.py::test_2",
    "tests/flows/test_b.py::test_1",
    "tests/test_alerts.py::test_1",
    "tests/test_local_stack.py::test_1",
    "tests/test_local_stack.py::test_2",
    "tests/test_store.py::test_1",
    "tests/test_store.py::test_2",
    "tests/test_store.py::test_3",
    "tests/test_store.py::test_4",
]


def _first_units(collection: list[str]) -> list[list[str]]:
    scheduling = ModuleScheduling(_Config())  # type: ignore[arg-type]
    workers = [_Worker("gw0"), _Worker("gw1")]
    for worker in workers:
        scheduling.add_node(worker)  # type: ignore[arg-type]
    for worker in workers:
        scheduling.add_node_collection(worker, collection)  # type: ignore[arg-type]
    scheduling.schedule()
    return [[collection[index] for index in worker.sent] for worker in workers]


def test_the_local_stack_and_all_flow_tests_start_at_once_on_two_workers() -> None:
    items = [_Item(nodeid) for nodeid in COLLECTED]
    longest_first(items)  # type: ignore[arg-type]
    first, second = _first_units([item.nodeid for item in items])
    # each worker starts with two units: its first is one of the two long ones
    assert first[:2] == ["tests/test_local_stack.py::test_1", "tests/test_local_stack.py::test_2"]
    assert second[:3] == [
        "tests/flows/test_a.py::test_1",
        "tests/flows/test_a.py::test_2",
        "tests/flows/test_b.py::test_1",  # every flow module in one unit: one Prefect harness
    ]
    # a short module follows, whole on one worker
    holders = [w for w in (first, second) if "tests/test_alerts.py::test_1" in w]
    assert len(holders) == 1


def test_sorting_keeps_each_modules_own_order() -> None:
    items = [_Item(nodeid) for nodeid in reversed(COLLECTED)]
    longest_first(items)  # type: ignore[arg-type]
    order = [item.nodeid for item in items]
    assert order[:2] == ["tests/test_local_stack.py::test_2", "tests/test_local_stack.py::test_1"]
    assert order[2:5] == [
        "tests/flows/test_b.py::test_1",
        "tests/flows/test_a.py::test_2",
        "tests/flows/test_a.py::test_1",
    ]
    assert order[5:] == [n for n in reversed(COLLECTED) if n not in order[:5]]
