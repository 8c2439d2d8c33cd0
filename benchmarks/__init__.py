"""The benchmark: the runner and its library here, the studies in ``benchmarks.studies``.

The main path is ``python -m benchmarks.run`` (``make bench``): ``suites`` (what is run), ``run`` (the runner),
``cells`` and ``final_accuracy`` (full trainings of the plans), ``records``, ``study`` and ``workers`` (what every
run and study shares), ``report``, ``aggregate``, ``intervals`` and ``plots`` (the reports), ``best_known`` and
``ground_truth`` (the stores of plans and trainings), ``compare`` and ``promote`` (checking a run and making it the
reference), ``docs_pages`` (the results pages of the documentation).
"""
