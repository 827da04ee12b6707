"""Shared building blocks (attention, convolutions, gating, state-space scan, mixture of experts).

``layers`` never imports from ``models``.
"""
