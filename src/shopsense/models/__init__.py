"""User-interest models under one protocol (:mod:`shopsense.models.base`).

A model's module is imported when the model is first asked for (``MODELS["sequential"]`` imports
torch, ``MODELS["als"]`` its solver): a process that loads only item-item models, such as search's
collaborative links, starts in a fraction of a second instead of seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Any

from shopsense.models.base import Histories, Model, ModelConfig

#: model name (what artifacts and configs use) -> (module, class)
_WHERE = {
    "popular": ("shopsense.models.popular", "PopularModel"),
    "covisit": ("shopsense.models.covisit", "CoVisitModel"),
    "itemknn": ("shopsense.models.item_item", "ItemKNNModel"),
    "ease": ("shopsense.models.item_item", "EASEModel"),
    "als": ("shopsense.models.als", "ALSModel"),
    "sequential": ("shopsense.models.sequential", "SequentialModel"),
    "content": ("shopsense.models.content", "ContentModel"),
}
_CLASSES = {cls: module for module, cls in _WHERE.values()}


class _Registry(Mapping[str, type[Model]]):
    """Model name -> class, importing the class's module on first use."""

    def __getitem__(self, name: str) -> type[Model]:
        if name not in _WHERE:
            raise KeyError(f"unknown model {name!r}; valid models: {', '.join(_WHERE)}")
        module, cls = _WHERE[name]
        model: type[Model] = getattr(import_module(module), cls)
        return model

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)


#: model name -> class
MODELS: Mapping[str, type[Model]] = _Registry()


def __getattr__(name: str) -> Any:
    # `from shopsense.models import SequentialModel` keeps working, lazily
    if name in _CLASSES:
        return getattr(import_module(_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MODELS", "Histories", "Model", "ModelConfig", *_CLASSES]
