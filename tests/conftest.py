"""Test-session settings shared by every test file, and the order in which ``make test`` hands the tests out."""

import fnmatch
import os

import pytest
import torch

# One intra-op thread in the processes the tests start too (README blocks, CLI commands, spawned workers): torch's
# default of one per core made the tiny networks several times slower when two tests run at once.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One intra-op thread: the tests are small, and worker processes (SuperSuit, Ray) must not oversubscribe."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ray_home(tmp_path_factory: pytest.TempPathFactory):
    """One HOME for every Ray cluster of the session: Ray writes ~/.ray and ~/ray_results, and keeps the auth
    token of its first ``init`` (in ``$HOME/.ray``) for the whole process."""
    home, previous = tmp_path_factory.mktemp("rayhome"), os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    yield home
    if previous is not None:
        os.environ["HOME"] = previous


@pytest.fixture(scope="module")
def ray_cluster(ray_home):
    """A local Ray cluster of 2 CPUs for the module's tests, its files out of the user's home."""
    from pruning_env.pools.ray import local_ray

    with local_ray(num_cpus=2):
        yield


# --- the order of the tests on pytest-xdist's workers -----------------------------------------------------------
# ``make test`` runs the tests on every core (pytest-xdist, load scheduling). Handed out in file order, the longest
# tests (several of them 30-120 s) could start last and keep one worker busy while the others sat idle. So the
# workers collect them first, longest first, and the controller hands the tests out one at a time as workers free
# up (``--maxschedchunk=1`` unless given): a greedy longest-first schedule. Only the order changes: every test runs.
# Expected seconds of the slowest tests (call phase on one worker of ``make test`` on 2 cores, from --durations),
# matched against node ids with fnmatch; any other test marked slow counts SLOW_DEFAULT_S, the rest 0. Stale or
# missing entries only make the order less good.
EXPECTED_SECONDS: dict[str, float] = {
    "tests/test_first_contact.py::test_sb3_ppo_*": 50,
    "tests/test_bench.py::test_results_are_the_same_for_any_worker_count*": 50,
    "tests/test_core_install.py::*": 45,
    "tests/test_rerun.py::*": 44,
    "tests/test_registered_ids.py::test_pettingzoo_api_tests[[]Vgg19*": 14,
    "tests/test_bench.py::test_tiny_suite_end_to_end_and_resume": 30,
    "tests/test_registered_ids.py::test_gymnasium_check_env[[]pruning_env/Vgg19*": 10,
    "tests/test_commands.py::test_ray_scaling_*": 25,
    "tests/test_oracle.py::test_a_tiny_study_*": 25,
    "tests/test_mappo_diagnosis.py::*": 25,
    "tests/test_pools.py::test_mappo_collects_*": 25,
    "tests/test_learning_curves.py::test_the_benchmark_*": 25,
    "tests/test_gpu_check.py::test_the_dry_version_*": 25,
    "tests/test_registered_ids.py::test_pettingzoo_parallel_seed_test[[]Vgg19*": 8,
    "tests/test_commands.py::test_pretrained_*": 23,
    "tests/test_rllib.py::test_ppo_*": 22,
    "tests/test_examples.py::test_example_runs_and_prints_what_it_promises[[]rllib_ppo]": 40,
    "tests/test_examples.py::test_example_runs_and_prints_what_it_promises[[]benchmarl_mappo]": 22,
    "tests/test_examples.py::test_example_runs_and_prints_what_it_promises[[]torchrl_ppo_step]": 15,
    "tests/test_speed_benchmarks.py::test_ray_scaling_*": 15,
    "tests/test_commands.py::test_ray_pool_*": 20,
    "tests/test_reproducibility.py::test_a_full_training_repeats_to_the_bit_in_a_fresh_process": 20,
    "tests/test_generalize.py::test_generalize_benchmark_*": 20,
    "tests/test_batched_training.py::test_batched_copies_equal_sequential_runs_in_float64[[]resnet]": 20,
    "tests/test_registered_ids.py::test_pettingzoo_aec_seed_test[[]Vgg19*": 8,
    "tests/test_mappo.py::test_two_worker_processes_*": 17,
    "tests/test_sb3_ppo.py::test_trains_with_two_workers_*": 17,
    "tests/test_pools.py::test_*_killed_*": 15,
    "tests/test_docs.py::test_example_runs[[]*": 15,
    "tests/test_bench.py::test_a_searcher_finds_the_same_plan_*": 15,
    "tests/test_readme.py::test_readme_block[[]*": 15,
    "tests/test_commands.py::test_mappo_diagnosis_*": 12,
    "tests/test_commands.py::test_snip_table1_*": 11,
}
SLOW_DEFAULT_S = 10.0


def expected_seconds(item: pytest.Item) -> float:
    for pattern, seconds in EXPECTED_SECONDS.items():
        if fnmatch.fnmatchcase(item.nodeid, pattern):
            return seconds
    return SLOW_DEFAULT_S if item.get_closest_marker("slow") else 0.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On xdist's workers (which collect; the controller schedules their common list): the longest tests first, the
    others in their file order (a stable sort). A run without xdist keeps the file order."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: -expected_seconds(item))


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Load scheduling that hands out one test at a time (``--maxschedchunk=1``, unless given) so that the
    longest-first order is kept across the workers; None (xdist's own choice) for any other ``--dist``."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScheduling

    if config.getoption("maxschedchunk") is None:
        config.option.maxschedchunk = 1
    return LoadScheduling(config, log)
