"""The MAPPO recipe study (``benchmarks.studies.mappo_recipe``): variants as rows of one suite run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

import agents
from benchmarks.records import read_records
from benchmarks.studies.mappo_recipe import Args, main, recipe_suite
from benchmarks.suites import QUIET_MAPPO, SUITES, get_suite


@pytest.fixture(autouse=True)
def registered_names_removed_after() -> Iterator[None]:
    """The variants' names registered by a test leave the registry with it (other tests list our controllers)."""
    before = set(agents.CONTROLLERS)
    yield
    for name in set(agents.CONTROLLERS) - before:
        del agents.CONTROLLERS[name]


def test_unknown_variants_are_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown variants \['fast'\]; known: default, best"):
        recipe_suite(Args(variants=("default", "fast")))


def test_the_variants_are_rows_of_the_suites_cells_beside_its_heuristics() -> None:
    suite = recipe_suite(Args(suite="short_trained", variants=("default", "best")))
    assert suite.name == "mappo_recipe_short_trained"
    assert (suite.tasks, suite.sparsities, suite.seeds) == (("cnn-digits-trained",), (0.8,), (0, 1, 2, 3, 4))
    assert suite.controllers == ("dense", "uniform", "erk", "lamp", "global_magnitude", "global_snip", "sensitivity",
                                 "mappo[default]", "mappo[best]")
    assert suite.options["mappo[best]"] == {**QUIET_MAPPO, "act_plan": "best"} == get_suite("short_trained").options["mappo"]
    assert suite.options["mappo[default]"] == QUIET_MAPPO


@pytest.mark.slow
def test_a_tiny_run_records_each_variant_and_best_acts_with_a_plan_other_than_the_mean(tmp_path, monkeypatch) -> None:
    one_target = replace(get_suite("tiny"), name="tiny_one_target", sparsities=(0.999,),
                         controllers=("dense", "global_snip", "mappo"))
    monkeypatch.setitem(SUITES, "tiny_one_target", one_target)
    main(Args(suite="tiny_one_target", variants=("default", "best"), out=tmp_path, progress=False, workers=1))
    cells = {r["controller"]: r for r in read_records(tmp_path / "mappo_recipe_tiny_one_target.jsonl")}
    assert set(cells) == {"dense", "global_snip", "mappo[default]", "mappo[best]"}
    assert cells["mappo[best]"]["settings"]["options"]["act_plan"] == "best"
    assert cells["mappo[best]"]["evaluations"] == cells["mappo[default]"]["evaluations"] == one_target.episodes_per_seed
    # the same training (same seed and recipe but the act): the best episode's plan is not the policy's mean
    assert cells["mappo[best]"]["requested"] != cells["mappo[default]"]["requested"]
    assert "| mappo[best] |" in (tmp_path / "mappo_recipe_tiny_one_target.md").read_text()
