"""The HTTP service: a FastAPI app whose routes are thin over the library (see :func:`create_app`)."""
