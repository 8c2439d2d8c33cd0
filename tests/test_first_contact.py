"""A new user's first contact: the README's quick start shows a poor and a good plan apart, and Stable-Baselines3
PPO on the Gymnasium env, with settings for one-step episodes (docs/integrations.md), learns beyond its own
starting plan.

The snippets below are the README's and the docs' text, character for character, and the SB3 example is the file
examples/sb3_one_step.py that the docs include: each test runs its snippet in this process and checks what it
computed. ``test_page_copy_is_this_text`` compares the snippets with the pages' blocks (tests/test_readme.py,
tests/test_docs.py and tests/test_examples.py run every other block and example, in subprocesses)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

import agents
from pruning_env import PruningEnv

README = Path(__file__).resolve().parent.parent / "README.md"
DOCS = README.parent / "docs"

QUICK_START = '''\
import numpy as np
import pruning_env

env = pruning_env.parallel_env(task="mlp-digits", target_sparsity=0.98)  # K = 100 training steps (the task's)
observations, infos = env.reset(seed=0)
print(len(env.agents), "layer agents,", len(env.feature_names), "features each")

# a poor plan: every layer asks for the target; the env projects any plan onto the exact global budget
actions = {agent: np.array([0.98], dtype=np.float32) for agent in env.agents}
observations, rewards, terminations, truncations, infos = env.step(actions)
uniform = rewards["layer_0"], infos["layer_0"]["accuracy"]

# a better one: each layer asks for what a global SNIP ranking would leave it (an observation column)
observations, infos = env.reset(seed=0)
snip = env.feature_names.index("snip_density")
actions = {agent: 1.0 - observations[agent][snip : snip + 1] for agent in env.agents}
observations, rewards, terminations, truncations, infos = env.step(actions)
global_snip = rewards["layer_0"], infos["layer_0"]["accuracy"]

print("reward = minus the validation loss after 100 masked training steps; accuracy then (chance: 0.1)")
print(f"uniform     {uniform[0]:.3f}  {uniform[1]:.3f}")
print(f"global SNIP {global_snip[0]:.3f}  {global_snip[1]:.3f}")
print("applied sparsities:", [round(infos[agent]["applied_sparsity"], 3) for agent in env.possible_agents])
'''

SB3_ONE_STEP = (README.parent / "examples" / "sb3_one_step.py").read_text(encoding="utf-8")
"""The docs' SB3 example, a file that docs/integrations.md includes (tests/test_examples.py checks the include)."""


DENSE_CUE = '''\
import numpy as np
from pruning_env import PruningEnv

# the cue for K: the DENSE network's accuracy after K steps (target 0 prunes nothing; chance is 0.1)
for steps in (5, 20, 50):
    dense = PruningEnv("mlp-digits", target_sparsity=0.0, reward_steps=steps).evaluate_plan(0, np.zeros(6))
    print(f"K = {steps:2d}: dense accuracy {dense.accuracy:.3f}, reward {dense.reward:.3f}")
'''


def run_snippet(code: str, name: str) -> dict:
    namespace: dict = {"__name__": f"readme_{name}"}
    exec(compile(code, f"<README {name}>", "exec"), namespace)
    return namespace


def test_quick_start_shows_a_poor_and_a_good_plan_apart():
    ns = run_snippet(QUICK_START, "quick start")
    (uniform_reward, uniform_accuracy), (snip_reward, snip_accuracy) = ns["uniform"], ns["global_snip"]
    # measured on mlp-digits, seed 0: uniform -1.836 / 0.278, global SNIP -0.756 / 0.743
    assert snip_reward > uniform_reward + 0.5, (uniform_reward, snip_reward)
    assert snip_accuracy > uniform_accuracy + 0.2, (uniform_accuracy, snip_accuracy)
    env = ns["env"]
    assert ns["infos"]["layer_0"]["global_sparsity"] == pytest.approx(0.98, abs=1e-4)
    # the snippet's SNIP plan is the heuristic controller's
    observations, infos = env.reset(seed=0)
    controller_plan = agents.make_controller("global_snip", env).act(observations, infos)
    assert env.step(controller_plan)[1]["layer_0"] == snip_reward


@pytest.mark.slow  # 128 reward evaluations at K = 50: about 1-2.5 minutes on 2 shared CPU cores
def test_sb3_ppo_with_one_step_settings_learns_beyond_its_starting_plan(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # gettempdir() caches TMPDIR at its first call
    ns = run_snippet(SB3_ONE_STEP, "sb3")
    before, after = ns["before"], ns["after"]
    # no noise to beat: the same deterministic plan on the same instance earns the same reward again
    assert ns["plan_reward"]() == after
    # measured: -1.493 (accuracy 0.375, the uniform plan) before, -0.850 (0.694) after 128 episodes
    assert after > before + 0.3, (before, after)
    # (torch's own cache, torchinductor_<user>, may appear there: it is created when torch._dynamo is imported)
    assert not list(tmp_path.glob("SB3-*")), f"SB3 left a log folder in the temp dir: {list(tmp_path.iterdir())}"


def test_dense_cue_for_k_and_a_k_too_small_for_the_target():
    ns = run_snippet(DENSE_CUE, "dense cue")
    assert ns["dense"].global_sparsity == 0.0
    # measured: dense accuracy 0.535 at K = 5, 0.819 at 20, 0.958 at 50
    accuracies = [PruningEnv(target_sparsity=0.0, reward_steps=k).evaluate_plan(0, np.zeros(6)).accuracy for k in (5, 50)]
    assert accuracies[0] < 0.7 < 0.9 < accuracies[1], accuracies
    # where the dense net is barely trained, pruned plans all sit at chance: nothing for a learner to tell apart
    env = PruningEnv(target_sparsity=0.98, reward_steps=5)
    observations, infos = env.reset(seed=0)
    plans = {name: agents.make_controller(name, env).act(observations, infos) for name in ("uniform", "global_snip")}
    for name, plan in plans.items():
        env.reset(seed=0)
        reward = env.step(plan)[1]["layer_0"]
        assert reward == pytest.approx(-np.log(10), abs=0.01), (name, reward)


def python_blocks(text: str) -> list[str]:
    return [match.group(1) for match in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)]


@pytest.mark.parametrize("name, code, marker, page", [
    ("quick start", QUICK_START, 'global_snip = rewards["layer_0"]', README),
    ("dense cue", DENSE_CUE, "the cue for K: the DENSE network", DOCS / "environment.md"),
])
def test_page_copy_is_this_text(name, code, marker, page):
    blocks = [block for block in python_blocks(page.read_text(encoding="utf-8")) if marker in block]
    assert blocks == [code], f"{page.name}'s {name} block differs from tests/test_first_contact.py's"

