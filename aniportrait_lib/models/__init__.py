"""models stage of the kit."""
