"""Test-session settings shared by every test file."""

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
