"""Data layer: corpus recipes, query embedding cache, mixture datasets."""
