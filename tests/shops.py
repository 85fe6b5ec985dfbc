"""Settings shared by tests that run the whole engine through the CLI on the sample shop."""

#: a small engine (TOML): a test of the life around the models, not of their quality
SMALL_ENGINE_TOML = """
[engine]
refit_epochs = 1
per_source = 10

[engine.sequential]
dim = 16
heads = 1
layers = 1
epochs = 2
"""
