"""The MAPPO diagnosis benchmark's measurements on a tiny budget: ruggedness rows, mean-plan traces, the table."""

from __future__ import annotations

import math

from benchmarks.studies.mappo_diagnosis import Args, cma_trace, mappo_trace, markdown, ruggedness


def test_ruggedness_mappo_and_cma_traces_and_their_table() -> None:
    args = Args(episodes=10, scales=(0.0, 0.3), perturbations=2)
    rugged = ruggedness(args, reward_orders=1)
    assert [row["scale"] for row in rugged["rows"]] == [0.0, 0.3]
    assert rugged["rows"][0]["std"] == 0.0 and rugged["rows"][0]["mean"] == rugged["reference"]  # no offset
    assert rugged["rows"][1]["std"] > 0.0
    trace = mappo_trace(args, "default")
    assert [row["episodes"] for row in trace["rows"]] == [0, 10]
    assert math.isfinite(trace["rows"][-1]["best"])
    cma = cma_trace(args)
    assert [row["episodes"] for row in cma["rows"]] == [0, 10]
    assert cma["rows"][0]["mean_plan"] == rugged["reference"]  # CMA-ES starts at global SNIP's plan
    text = markdown(args, [rugged, trace, cma])
    assert "| 1 |" in text and "| mappo: default |" in text and "| cma_es |" in text
