"""The engine's contract suite: the same behaviour from every engine and every observer."""
