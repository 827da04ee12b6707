"""Torch-free checks of layer options, shared by each layer and the backbone configs that build it
(so a config is validated, and the pipeline computes code versions, without importing torch)."""

from __future__ import annotations

TOKEN_MODES = ("patch", "step")


def check_patching(token_mode: str, patch_len: int, patch_stride: int) -> None:
    """`ValueError` unless the tokenisation is valid (the layer and every config that builds it)."""
    if token_mode not in TOKEN_MODES:
        raise ValueError(f"token_mode must be one of {TOKEN_MODES}, got {token_mode!r}")
    if patch_len < 1 or not 1 <= patch_stride <= patch_len:
        # a stride longer than the patch would leave steps that no token covers
        raise ValueError(f"need 1 <= patch_stride <= patch_len, got patch_len={patch_len}, "
                         f"patch_stride={patch_stride}")


ROUTINGS = ("sparse", "dense")


def check_routing(routing: str, num_experts: int, top_k: int, capacity_factor: float | None) -> None:
    """`ValueError` unless the routing is valid (the layer and every config that builds it)."""
    if routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {ROUTINGS}, got {routing!r}")
    if num_experts < 1 or not 1 <= top_k <= num_experts:
        raise ValueError(f"need 1 <= top_k <= num_experts, got top_k={top_k}, num_experts={num_experts}")
    if capacity_factor is not None and capacity_factor <= 0:
        raise ValueError(f"capacity_factor must be > 0 or null, got {capacity_factor}")


SSM_INITS = ("real", "lin")
