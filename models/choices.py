"""The model choices a plan or a study may name, each written once.

The plan's and the study's schemas take these `Literal`s as their field types, and the hierarchical model
checks its settings against the tuples derived from them (`METHODS`, `SAMPLERS`, `FATIGUE`), so a new choice
is added here and nowhere else. Kept free of imports so that the plan's schema stays cheap to import.
"""

from __future__ import annotations

from typing import Literal, get_args

ModelName = Literal["conjugate", "hierarchical"]
#: Inference methods: the fast path (falls back to NUTS when its gate fails) and NUTS only.
MethodName = Literal["laplace_is", "nuts"]
SamplerName = Literal["nutpie", "pymc"]
FatigueName = Literal["none", "days", "impressions"]

MODELS: tuple[str, ...] = get_args(ModelName)
METHODS: tuple[str, ...] = get_args(MethodName)
SAMPLERS: tuple[str, ...] = get_args(SamplerName)
FATIGUE: tuple[str, ...] = get_args(FatigueName)
