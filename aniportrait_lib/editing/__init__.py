"""editing stage of the kit."""
