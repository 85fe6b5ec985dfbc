"""User-interest models under one protocol (:mod:`shopsense.models.base`)."""

from shopsense.models.als import ALSModel
from shopsense.models.base import Histories, Model, ModelConfig
from shopsense.models.content import ContentModel
from shopsense.models.covisit import CoVisitModel
from shopsense.models.item_item import EASEModel, ItemKNNModel
from shopsense.models.popular import PopularModel
from shopsense.models.sequential import SequentialModel

#: model name -> class (the name is what artifacts and configs use)
MODELS: dict[str, type[Model]] = {
    m.name: m for m in (PopularModel, CoVisitModel, ItemKNNModel, EASEModel, ALSModel, SequentialModel, ContentModel)
}

__all__ = ["MODELS", "Histories", "Model", "ModelConfig"] + [m.__name__ for m in MODELS.values()]
