"""The hierarchical tool-stacking study: structures, the search driver, its tables."""
