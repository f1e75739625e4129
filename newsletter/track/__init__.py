"""The track stage."""
