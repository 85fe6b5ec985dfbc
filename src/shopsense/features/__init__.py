"""Product understanding: text and image encoders, product text, embedding cache, tokenizers."""
