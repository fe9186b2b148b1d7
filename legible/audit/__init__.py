"""Measurements of what a CoT says, hides and relies on."""
