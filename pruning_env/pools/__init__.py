"""Evaluation pools: one stateless protocol for evaluating pruning plans, with local, process and Ray backends.

A reward depends only on (env source, reset seed, plan) on one kind of device, so workers keep no episode state:

- ``observe(seeds, sources)`` -> the stacked observation ``(L, F)`` of each (source, seed) instance;
- ``evaluate(requests)`` -> one ``pruning_env.plan.EpisodeResult`` per ``PlanRequest(seed, plan, source)``.

Every backend returns the results in input order, each exactly once; a worker that dies mid-call (killed, out of
memory, node lost) is replaced and its call resubmitted, up to ``max_attempts`` times per call; an error raised
by the env itself (a bad plan, say) is raised, not retried. The requests of one source travel to the workers in
chunks of the env's ``reward_batch`` (1 on CPU, 64 on CUDA): a worker trains a chunk's episodes of one instance
side by side (``PruningEnv.evaluate_plans``), and with Ray each GPU actor evaluates whole batches.

| backend      | module                          | workers                                       |
|--------------|---------------------------------|-----------------------------------------------|
| ``LocalPool``   | ``pruning_env.pools.local``   | the envs in this process                      |
| ``ProcessPool`` | ``pruning_env.pools.process`` | spawned processes, one torch thread each      |
| ``RayPool``     | ``pruning_env.pools.ray``     | Ray actors, on one machine or a cluster       |

    with make_pool([{"task": "mlp-digits", "reward": "neg_loss"}], workers=2) as pool:
        observation = pool.observe([0])[0]                             # (L, F)
        results = pool.evaluate([PlanRequest(0, np.full(len(observation), 0.98))])

``JobPool`` (``pruning_env.pools.jobs``) runs any picklable function on the same kind of workers: the benchmark's
full trainings and the studies' other work.
"""

from collections.abc import Sequence

from pruning_env.pools.jobs import JobPool
from pruning_env.pools.local import LocalPool
from pruning_env.pools.process import ProcessPool
from pruning_env.pools.protocol import EnvInfo, EnvSource, EvaluationPool, PlanRequest, PoolBase, build_env


def make_pool(sources: Sequence[EnvSource], workers: int = 1, ray_address: str | None = None) -> PoolBase:
    """Ray actors when ``ray_address`` is set ("local" starts a local cluster), else the envs in this process for
    one worker, else spawned worker processes."""
    if ray_address is not None:
        from pruning_env.pools.ray import RayPool  # ray is an optional extra: imported only when asked for

        return RayPool(sources, workers, None if ray_address == "local" else ray_address)
    return LocalPool(sources) if workers == 1 else ProcessPool(sources, workers)


__all__ = ["EnvInfo", "EnvSource", "EvaluationPool", "JobPool", "LocalPool", "PlanRequest", "ProcessPool", "build_env", "make_pool"]
