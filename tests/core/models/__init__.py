"""Backbone and shared-layer tests."""
