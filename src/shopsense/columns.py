"""Column names used everywhere: one place, so a rename is one edit."""

from __future__ import annotations

# Products
ITEM = "item_id"
TITLE = "title"
DESCRIPTION = "description"
CATEGORY = "category"  # a path such as "Kitchen > Appliances > Microwaves"
BRAND = "brand"
PRICE = "price"
IMAGE_URL = "image_url"
TAGS = "tags"  # list of strings (JSON text in the store)
ATTRIBUTES = "attributes"  # free mapping (JSON text in the store)
AVAILABLE = "available"
CREATED_AT = "created_at"
UPDATED_AT = "updated_at"

PRODUCT_COLUMNS = (
    ITEM,
    TITLE,
    DESCRIPTION,
    CATEGORY,
    BRAND,
    PRICE,
    IMAGE_URL,
    TAGS,
    ATTRIBUTES,
    AVAILABLE,
    CREATED_AT,
    UPDATED_AT,
)

# Events
EVENT_ID = "event_id"
USER = "user_id"
#: the user id of events and lists of a shopper the caller did not name (one shared id: it has no history)
ANONYMOUS_USER = "anonymous"
EVENT_TYPE = "event_type"
VALUE = "value"
TIMESTAMP = "timestamp"  # unix seconds (float) once validated
SESSION = "session_id"
QUERY = "query"
REQUEST_ID = "request_id"
ORDER_ID = "order_id"  # the order a purchase belongs to (optional)
EVENT_KEY = "event_key"  # identity used for de-duplication, derived at ingest

EVENT_COLUMNS = (
    EVENT_ID,
    USER,
    ITEM,
    EVENT_TYPE,
    VALUE,
    TIMESTAMP,
    SESSION,
    QUERY,
    REQUEST_ID,
    ORDER_ID,
)

# Event types
VIEW = "view"
CLICK = "click"
FAVORITE = "favorite"  # saved to a wish list
ADD_TO_CART = "add_to_cart"
REMOVE_FROM_CART = "remove_from_cart"  # says what is no longer in the cart, not interest
PURCHASE = "purchase"
RATING = "rating"
SEARCH = "search"
EVENT_TYPES = (VIEW, CLICK, FAVORITE, ADD_TO_CART, REMOVE_FROM_CART, PURCHASE, RATING, SEARCH)

# Users
OPTED_OUT = "opted_out"  # the shopper opted out of personalisation
ANONYMOUS_ID = "anonymous_id"  # a storefront shopper id merged into a user at login (table user_links)
LINKED_AT = "linked_at"
USER_COLUMNS = (USER, ATTRIBUTES, CREATED_AT)

# Impressions (what was shown, and where)
POSITION = "position"
SOURCE = "source"
MODEL_VERSION = "model_version"
SURFACE = "surface"  # "recommend" | "search" | "similar"
EXPERIMENT = "experiment"  # the running experiment a request was in (impressions; None outside one)
ARM = "arm"  # its arm; in interleave mode the team that contributed the item
#: impressions: the position the ranking gave the item when a randomised swap showed it elsewhere
#: (None: shown where it was ranked); what the position-bias estimator reads (ranking/propensity.py)
RANKED_POSITION = "ranked_position"
SCORE = "score"

IMPRESSION_COLUMNS = (
    REQUEST_ID,
    USER,
    ITEM,
    POSITION,
    SCORE,
    SOURCE,
    SURFACE,
    MODEL_VERSION,
    QUERY,
    TIMESTAMP,
    EXPERIMENT,  # last three: rows without them (older callers) are padded with None
    ARM,
    RANKED_POSITION,
)

# Internal integer indices produced by the Dataset id maps
USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
WEIGHT = "weight"
