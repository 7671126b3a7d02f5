"""evaluation stage of the kit."""
