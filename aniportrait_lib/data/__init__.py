"""data stage of the kit."""
