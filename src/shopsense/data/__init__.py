"""Data layer: schemas, readers, validation, ingest, id maps, the training Dataset and splits."""
