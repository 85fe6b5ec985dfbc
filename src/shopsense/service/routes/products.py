"""Catalog: ``PUT /products`` (upsert, admin), ``DELETE /products/{item_id}`` (admin), reads (read or the page key)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Path, Query

from shopsense import columns as C
from shopsense.data.ids import normalize_id
from shopsense.service.deps import AdminKey, ListKey, State
from shopsense.service.schemas import Deleted, Product, ProductIn, ProductsUpserted
from shopsense.service.validate import products_frame

router = APIRouter(tags=["products"])

# `{item_id:path}`: any id the ingest accepts, `a/b` included (sent as `a%2Fb` or as is)
ItemPath = Path(..., min_length=1, max_length=1024, description="the product id, percent-encoded")


def product_record(row: dict[str, Any]) -> Product:
    """A store row as the API's product (NaN -> None)."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    clean = {k: v for k, v in clean.items() if k in Product.model_fields}
    clean["available"] = bool(clean.get("available", True)) if clean.get("available") is not None else True
    clean["tags"] = clean.get("tags") or []
    clean["attributes"] = clean.get("attributes") or {}
    return Product(**clean)


@router.put("/products", response_model=ProductsUpserted, dependencies=[AdminKey])
def put_products(
    state: State,
    body: ProductIn | list[ProductIn] = Body(..., description="one product, or a JSON array of products"),
) -> ProductsUpserted:
    """Insert or update products by ``item_id``; unchanged rows are left alone."""
    products = body if isinstance(body, list) else [body]
    limit = state.settings.service.max_batch_products
    if len(products) > limit:
        raise HTTPException(413, f"batch of {len(products)} products is over the limit of {limit}; split it")
    if not products:
        return ProductsUpserted(received=0, written=0)
    df = products_frame([p.model_dump() for p in products], state.settings.ingest)
    df = df.drop_duplicates(C.ITEM, keep="last")
    written = state.store.upsert_products(df)
    if written:
        state.catalog_changed()
    return ProductsUpserted(received=len(products), written=written)


@router.delete("/products/{item_id:path}", response_model=Deleted, dependencies=[AdminKey])
def delete_product(state: State, item_id: str = ItemPath) -> Deleted:
    """Remove a product from the catalog (its past events stay as history)."""
    item_id = normalize_id(item_id, "item id")
    n = state.store.delete_products([item_id])
    if n == 0:
        raise HTTPException(404, f"unknown product {item_id!r}")
    state.catalog_changed()
    return Deleted(deleted={"products": n})


@router.get("/products/{item_id:path}", response_model=Product, dependencies=[ListKey])
def get_product(state: State, item_id: str = ItemPath) -> Product:
    item_id = normalize_id(item_id, "item id")
    row = state.store.get_product(item_id)
    if row is None:
        raise HTTPException(404, f"unknown product {item_id!r}")
    return product_record(row)


@router.get("/products", response_model=list[Product], dependencies=[ListKey])
def list_products(
    state: State,
    category: str | None = Query(None, max_length=1000, description="category path prefix"),
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(50, ge=1, le=500),
) -> list[Product]:
    """Browse the catalog (ordered by ``item_id``)."""
    df = state.store.products()
    if category:
        df = df[df[C.CATEGORY].fillna("").astype(str).str.startswith(category)]
    page = df.iloc[offset : offset + limit]
    return [product_record(r) for r in page.to_dict("records")]
