"""Backbones, one per file, selected by ``model.architecture`` through `registry.build_backbone`."""
