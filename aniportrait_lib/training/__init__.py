"""training stage of the kit."""
