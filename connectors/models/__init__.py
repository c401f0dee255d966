"""Model-side artifacts that travel with a registered model version (the retrieval memory)."""
