"""LLM agents: one conversation runner, one adapter per provider API."""
