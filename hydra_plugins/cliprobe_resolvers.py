"""OmegaConf resolvers conf/ needs, for DVC's own composition on ``dvc exp run``.

Hydra imports every module under ``hydra_plugins`` it finds on ``sys.path``, and DVC puts this
project's root there before composing (``hydra.plugins_path``, default: the repository root).
``cliprobe compose`` registers the same resolvers itself.
"""

from cliprobe.config.cell_shards import register_resolver

register_resolver()
