"""Live sessions: one speaker's audio in, AU frames and video frames out, to any transport."""
