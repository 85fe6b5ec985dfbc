"""A version folder's manifest (format checked, refused with what to do), and its models read by
their own loaders: search's collaborative links load without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense import versions
from shopsense.data.dataset import Dataset
from shopsense.exceptions import IncompatibleFormatError, NoModelError
from shopsense.models.covisit import CoVisitModel
from shopsense.versions import FORMAT_VERSION, read_manifest, write_manifest


def test_manifest_round_trip(tmp_path: Path) -> None:
    written = write_manifest(tmp_path, "v1", last_event_ts=123.0, metrics={"n_items": 3})
    read = read_manifest(tmp_path)
    assert read == written and read.format_version == FORMAT_VERSION and read.last_event_ts == 123.0


@pytest.mark.parametrize(
    "content",
    [
        {"version": "v1", "format_version": FORMAT_VERSION + 1},
        {"version": "v1"},  # written before formats were numbered
    ],
)
def test_a_manifest_of_another_format_is_refused_saying_retrain(tmp_path: Path, content: dict) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(IncompatibleFormatError, match=r"model version v1 has format .*shopsense train"):
        read_manifest(tmp_path)


def test_a_missing_or_unreadable_manifest(tmp_path: Path) -> None:
    with pytest.raises(NoModelError, match="shopsense train"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IncompatibleFormatError, match="cannot be read"):
        read_manifest(tmp_path)


def test_served_folder_refuses_an_incompatible_version(sqlite_store, tmp_path: Path) -> None:
    folder = tmp_path / "models" / "v1"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"version": "v1", "format_version": 99}), encoding="utf-8")
    sqlite_store.register_version("v1", status="complete", path="models/v1")
    sqlite_store.activate_version("v1")
    with pytest.raises(IncompatibleFormatError, match="retrain"):
        versions.served_folder(sqlite_store, tmp_path)


def _version_with_covisit(folder: Path) -> CoVisitModel:
    events = pd.DataFrame(
        [(u, i, C.VIEW, float(t)) for u in ("a", "b") for t, i in enumerate(["p1", "p2", "p3"])],
        columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP],
    )
    products = pd.DataFrame({C.ITEM: ["p1", "p2", "p3"], C.TITLE: ["one", "two", "three"]})
    ds = Dataset.from_frames(events, products)
    model = CoVisitModel().fit(ds)
    model.save(folder / "engine" / "covisit")
    ds.items.save(folder / "items.json")
    write_manifest(folder, "v1", last_event_ts=2.0, metrics={})
    return model


def test_a_model_is_read_by_its_own_loader(tmp_path: Path) -> None:
    model = _version_with_covisit(tmp_path)
    assert versions.has_model(tmp_path, "covisit") and not versions.has_model(tmp_path, "ease")
    loaded = versions.load_model(tmp_path, "covisit")
    assert isinstance(loaded, CoVisitModel) and (loaded.sim != model.sim).nnz == 0
    assert list(versions.items(tmp_path).external_ids) == ["p1", "p2", "p3"]


def test_collaborative_links_load_without_torch(tmp_path: Path) -> None:
    """Search's collaborative part loads the item-item model through the models' registry, which
    imports only that model's module: a search process never pays for torch (it did before, through
    the models package)."""
    _version_with_covisit(tmp_path)
    code = (
        "import sys\n"
        "from shopsense.search.collaborative import load_item_affinity\n"
        f"aff = load_item_affinity({str(tmp_path)!r})\n"
        "assert aff is not None and aff.source == 'covisit' and len(aff) == 3, aff\n"
        "print(sorted(m for m in ('torch', 'implicit', 'shopsense.models.sequential') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
