"""Transformer MAPPO for layer-wise pruning: layers are tokens, one set of weights serves any network.

Modules: ``config`` (the dataclass), ``policy`` (the token transformer), ``ppo`` (loss and update),
``rollout`` (episode collection in processes), ``train`` (the loop, logs, checkpoints), ``controller`` (the
``"mappo"`` / ``"mappo_ar"`` controllers), ``__main__`` (the tyro CLI: ``python -m agents.mappo --help``).
"""

from agents.mappo.config import MappoConfig
from agents.mappo.controller import MappoController
from agents.mappo.policy import TokenPolicy

__all__ = ["MappoConfig", "MappoController", "TokenPolicy"]
