"""landmarks stage of the kit."""
