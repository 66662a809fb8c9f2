"""Model specs, one module per model key. Importing a module registers its specs."""
