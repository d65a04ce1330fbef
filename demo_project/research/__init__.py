"""The research assistant: an agent that answers questions from a small library, plus its background work."""
