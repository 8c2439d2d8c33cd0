"""Studies beside the benchmark suites, each a ``python -m benchmarks.studies.<name>`` command writing into its
``--out`` folder (``benchmarks.promote`` makes a run the reference):

| study | question |
|---|---|
| ``oracle`` (with ``oracle_search``) | how much better than the best heuristic a plan can be, on the ground truth |
| ``reward_validity`` | which reward variant's search captures that headroom at an equal compute budget |
| ``fidelity`` | how each proxy reward ranks plans against their final accuracy, and at what cost |
| ``learning_curves`` | final accuracy of a controller's plan against the evaluations it spent |
| ``generalize`` | pretrained controllers on held-out networks |
| ``snip_table1`` | SNIP's published LeNet-300-100 errors under our schedules |
| ``numerics`` | the same trainings under other CPU kernels |
| ``mappo_diagnosis`` | why MAPPO's mean plan does not move on one instance |
| ``family_proxy`` | a trained controller's proxy reward against global SNIP's and LAMP's on every member of a family |
| ``env_speed``, ``reward_throughput``, ``ray_scaling`` | speed of the env, the batched reward and Ray pools |
| ``gpu_check`` | the GPU check script (``make gpu-check``) |
"""
