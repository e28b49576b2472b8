"""Adapters to outside registers (population, health certificates, portal sync)."""
