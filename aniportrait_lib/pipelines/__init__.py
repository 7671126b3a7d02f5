"""pipelines stage of the kit."""
