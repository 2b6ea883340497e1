"""PASID names both ways: a PASID's going takes exactly its names, found without a walk."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.pasid_names import PasidNames
from ioasid_core.prq import GenericPrq
from ioasid_core.replay import replay
from ioasid_core.scenario.schema import PlatformSpec, Scenario, SetSpec, Step


def test_names_of_one_pasid_go_together_and_only_they() -> None:
    names = PasidNames()
    names.set("a", 5)
    names.set("b", 5)
    names.set("c", 6)
    assert names.names_of(5) == ["a", "b"] and len(names) == 3
    assert names.drop_pasid(5) == ["a", "b"]
    assert names.get("a") is None and names.get("b") is None and names.get("c") == 6
    assert names.names_of(5) == [] and names.drop_pasid(5) == []


def test_renaming_moves_a_name_and_dropping_an_unknown_one_is_a_no_op() -> None:
    names = PasidNames()
    names.set("a", 5)
    names.set("a", 7)
    assert names.names_of(5) == [] and names.names_of(7) == ["a"]
    names.drop("zzz")
    names.drop("a")
    assert "a" not in names and names.names_of(7) == [] and len(names) == 0


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["set", "drop", "drop_pasid"]),
            st.sampled_from("abcdef"),
            st.integers(0, 4),
        ),
        max_size=60,
    )
)
def test_both_directions_agree_with_a_plain_dict(ops: list[tuple[str, str, int]]) -> None:
    names = PasidNames()
    model: dict[str, int] = {}
    for op, name, pasid in ops:
        if op == "set":
            names.set(name, pasid)
            model[name] = pasid
        elif op == "drop":
            names.drop(name)
            model.pop(name, None)
        else:
            gone = names.drop_pasid(pasid)
            assert sorted(gone) == sorted(n for n, p in model.items() if p == pasid)
            model = {n: p for n, p in model.items() if p != pasid}
        for n in "abcdef":
            assert names.get(n) == model.get(n)
        for p in range(5):
            assert sorted(names.names_of(p)) == sorted(n for n, v in model.items() if v == p)


def test_a_free_forgets_the_freed_name_among_many_live_ones() -> None:
    live = 2000
    steps = [Step(op="alloc", set="s", owner="drv", name=f"n{i}") for i in range(live)]
    steps += [Step(op="free", pasid=f"n{i}", at=1) for i in range(0, live, 2)]
    steps.append(Step(op="free", pasid="n0", at=2))  # its name went with the first free
    scenario = Scenario(
        name="names", platform=PlatformSpec(sets=(SetSpec(name="s"),)), steps=tuple(steps)
    )
    m = replay(scenario, GenericPrq()).metrics
    assert m.allocations == live and m.frees == live // 2
    assert m.step_errors == [": PASID 'n0' was never allocated (its allocation or bind failed)"]
