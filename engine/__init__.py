"""Per-session real-time parts of the avatar engine: audio in, action units, frames out."""
