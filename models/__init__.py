"""PyTorch networks, checkpoint loaders and exports for the avatar engine."""
