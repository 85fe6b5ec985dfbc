"""A deleted shopper's searches leave autocomplete, "did you mean" and the served engines' memory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.search import SearchEngine
from shopsense.search.autocomplete import Autocomplete
from shopsense.service.engines import Served
from shopsense.store import open_store
from shopsense.store.users import UserDeletion


def test_forget_takes_back_counts_and_drops_queries_nobody_else_searched() -> None:
    ac = Autocomplete.build(["Whirlpool Microwave"], queries=["whirlpool fridge", "whirlpool fridge", "zyzzyva"])
    assert ac.suggest("z") == ["zyzzyva"] and ac.suggest("whirl") == ["whirlpool fridge", "whirlpool microwave"]
    assert ac.forget(["zyzzyva", "Whirlpool Fridge ", "never searched"]) == 2
    assert ac.suggest("z") == [] and "zyzzyva" not in ac.queries and ac.queries_with_word("zyzzyva") == []
    assert ac.queries["whirlpool fridge"] == 1  # someone else searched it too: it stays, once
    assert ac.suggest("whirl") == ["whirlpool fridge", "whirlpool microwave"]
    ac.forget(["whirlpool fridge"])
    assert ac.suggest("whirl") == ["whirlpool microwave"] and ac.suggest("whirlpool m") == ["whirlpool microwave"]


class _Encoder:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def remembered_queries(self) -> list[str]:
        return ["held in memory"]

    def forget_queries(self, texts: list[str]) -> int:
        self.forgotten += texts
        return len(texts)


def test_served_engines_forget_a_deleted_user(tmp_path) -> None:
    products = pd.DataFrame({"item_id": ["a", "b"], "title": ["Red kettle", "Blue mug"]})
    engine = SearchEngine.build(products, None, queries=["zyzzyva kettle", "red kettle"])
    settings = load_settings(home=tmp_path)
    served = Served(version=None, path=None, store=open_store(settings.store_url), settings=settings)
    served.searcher, served.encoder = engine, _Encoder()
    assert engine.autocomplete("zy") == ["zyzzyva kettle"]
    deletion = UserDeletion({"events": 2}, searches=["zyzzyva kettle"], forgotten_queries=["zyzzyva kettle"])
    served.forget_user("u1", deletion)
    assert engine.autocomplete("zy") == [] and engine.autocomplete("red") == ["red kettle"]
    assert served.encoder.forgotten == ["zyzzyva kettle"]
    assert np.isfinite(engine.search("kettle", k=2).scores).all()


def test_a_deletion_by_another_process_is_caught_up_with(tmp_path) -> None:
    settings = load_settings(home=tmp_path)
    store = open_store(settings.store_url)
    searches = [("u1", "zyzzyva kettle"), ("u2", "red kettle"), ("u1", "red kettle")]
    store.add_events(
        pd.DataFrame(
            {
                C.USER: [u for u, _ in searches],
                C.EVENT_TYPE: C.SEARCH,
                C.QUERY: [q for _, q in searches],
                C.TIMESTAMP: [1.0, 2.0, 3.0],
            }
        )
    )
    products = pd.DataFrame({"item_id": ["a", "b"], "title": ["Red kettle", "Blue mug"]})
    engine = SearchEngine.build(products, None, queries=[q for _, q in searches])
    served = Served(version=None, path=None, store=store, settings=settings)
    served.searcher, served.encoder = engine, _Encoder()
    assert served.catch_up_on_deletions() is False  # nothing deleted yet: nothing to do
    open_store(settings.store_url).delete_users(["u1"])  # the CLI, or another worker
    assert served.catch_up_on_deletions() is True
    assert engine.autocomplete("zy") == [] and engine.index.autocompleter.queries == {"red kettle": 1}
    assert served.encoder.forgotten == ["held in memory"]
    assert served.catch_up_on_deletions() is False  # once per deletion
