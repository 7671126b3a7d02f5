"""Real pretrained weights: where they live, what is missing, and converting official checkpoints."""
