"""Controllers for pruning_env: heuristics, random search, CMA-ES and TPE, the successive-halving multi-fidelity searcher, the transformer MAPPO baseline and the shipped
pretrained MAPPO controller.

Importing this package registers every controller in ``CONTROLLERS``; build one with ``make_controller(name, env)``.
"""

from agents import (  # importing registers their controllers
    benchmarl_marl,
    black_box,
    heuristics,
    mappo,
    multi_fidelity,
    pretrained,
    random_search,
    sb3_ppo,
    sensitivity,
)
from agents.base import (
    CONTROLLERS,
    Controller,
    Declaration,
    DenseController,
    SearchController,
    TrainableController,
    TrainingReport,
    declaration_of,
    declare,
    fixed_target,
    make_controller,
    register_controller,
    stacked,
    to_actions,
)
from agents.black_box import CMAESSearch, TPESearch
from agents.heuristics import RandomController, ReferenceController
from agents.multi_fidelity import SuccessiveHalvingSearch
from agents.random_search import RandomSearch
from agents.sb3_ppo import PPOConfig, SB3PPOController, train_sb3_ppo

__all__ = [
    "CMAESSearch",
    "CONTROLLERS",
    "Controller",
    "Declaration",
    "DenseController",
    "PPOConfig",
    "RandomController",
    "RandomSearch",
    "ReferenceController",
    "SB3PPOController",
    "SuccessiveHalvingSearch",
    "SearchController",
    "TrainableController",
    "TPESearch",
    "TrainingReport",
    "benchmarl_marl",
    "black_box",
    "declaration_of",
    "declare",
    "fixed_target",
    "heuristics",
    "make_controller",
    "mappo",
    "multi_fidelity",
    "pretrained",
    "random_search",
    "register_controller",
    "sb3_ppo",
    "sensitivity",
    "stacked",
    "to_actions",
    "train_sb3_ppo",
]
