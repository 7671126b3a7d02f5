"""audio stage of the kit."""
