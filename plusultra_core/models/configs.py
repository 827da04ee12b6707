"""The config dataclass of every backbone, torch-free (the split of HF transformers'
``configuration_*.py`` from ``modeling_*.py``): the registry builds and validates a model config,
and the pipeline hashes it into its code versions, without importing torch. Each backbone file
re-exports its config; ``configs/models/<architecture>.yaml`` documents the fields."""

from __future__ import annotations

from dataclasses import dataclass

from plusultra_core.layers.options import SSM_INITS, check_patching, check_routing


@dataclass
class TemporalBackboneConfig:
    """Knobs of `TemporalHybridBackbone` (field by field in ``configs/models/temporal_hybrid.yaml``)."""

    d_model: int = 64                       # width D of every token
    n_heads: int = 4                        # attention heads (must divide d_model)
    n_layers: int = 3                       # TemporalBlocks (depth)
    dilations: tuple[int, ...] = (1, 2, 4)  # layer i convolves with dilation dilations[i % len]
    kernel_size: int = 3                    # dilated conv kernel (in tokens)
    ff_mult: int = 4                        # FFN hidden width = ff_mult * d_model
    dropout: float = 0.1                    # residual / FFN / embedding dropout
    attn_dropout: float = 0.0               # on attention weights; > 0 forces SDPA's slower math path on CPU
    patch_len: int = 8                      # steps per patch (and conv width of step mode)
    patch_stride: int = 4                   # steps between patch starts (<= patch_len)
    token_mode: str = "patch"               # "patch": one token per patch; "step": one per bar
    max_len: int = 512                      # longest context T accepted
    causal: bool = True                     # tokens see only the past (steps[t] uses x[<= t])
    decoder_layers: int = 1                 # blocks of the learned future-query decoder

    def __post_init__(self):
        self.dilations = tuple(self.dilations)
        if self.d_model < 1 or self.n_heads < 1 or self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a positive multiple of n_heads={self.n_heads}")
        if self.n_layers < 1 or self.decoder_layers < 1:
            raise ValueError(f"n_layers ({self.n_layers}) and decoder_layers ({self.decoder_layers}) must be >= 1")
        if not self.dilations or any(int(d) != d or d < 1 for d in self.dilations):
            raise ValueError(f"dilations must be a non-empty list of positive integers, got {self.dilations}")
        if self.kernel_size < 1 or self.ff_mult < 1 or self.max_len < 1:
            raise ValueError("kernel_size, ff_mult and max_len must be >= 1")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.attn_dropout < 1.0):
            raise ValueError(f"dropout ({self.dropout}) and attn_dropout ({self.attn_dropout}) must be in [0, 1)")
        check_patching(self.token_mode, self.patch_len, self.patch_stride)


@dataclass
class TemporalFusionConfig:
    """Knobs of `TemporalFusionBackbone` (field by field in ``configs/models/temporal_fusion.yaml``)."""

    d_model: int = 64            # width D of every embedding
    n_heads: int = 4             # attention heads (must divide d_model)
    encoder_layers: int = 2      # transformer layers over the history
    decoder_layers: int = 1      # future-query layers (self-attn + cross-attn + GRN)
    dropout: float = 0.1         # residual / GRN dropout
    attn_dropout: float = 0.0    # on attention weights; > 0 forces SDPA's slower math path on CPU
    ff_mult: int = 2             # GRN hidden width = ff_mult * d_model
    max_len: int = 512           # longest context T accepted
    causal: bool = True          # encoder attends only to the past (steps[t] uses x[<= t])
    var_dim: int = 8             # per-variable embedding width E inside the VSN

    def __post_init__(self):
        if self.d_model < 1 or self.n_heads < 1 or self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a positive multiple of n_heads={self.n_heads}")
        if self.encoder_layers < 1 or self.decoder_layers < 1:
            raise ValueError(f"encoder_layers ({self.encoder_layers}) and decoder_layers "
                             f"({self.decoder_layers}) must be >= 1")
        if self.ff_mult < 1 or self.max_len < 1 or self.var_dim < 1:
            raise ValueError("ff_mult, max_len and var_dim must be >= 1")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.attn_dropout < 1.0):
            raise ValueError(f"dropout ({self.dropout}) and attn_dropout ({self.attn_dropout}) must be in [0, 1)")


@dataclass
class OmniMixtureConfig:
    """Knobs of `OmniMixtureBackbone` (field by field in ``configs/models/omni_mixture.yaml``)."""

    d_model: int = 64                          # width D
    n_layers: int = 4                          # mixer layers; even -> SSM, odd -> dilated conv
    n_heads: int = 4                           # heads of cross-scale attention and the decoder
    ssm_state_dim: int = 8                     # N: state size per channel of the SSM
    coarse_factor: int = 8                     # fine steps pooled into one coarse token
    cross_every: int = 2                       # a cross-scale attention after every k-th layer
    dilations: tuple[int, ...] = (1, 2, 4, 8)  # conv layer j uses dilations[j % len]
    kernel_size: int = 3                       # dilated conv kernel
    ff_mult: int = 4                           # FFN hidden width = ff_mult * d_model
    dropout: float = 0.1
    max_len: int = 512                         # longest context T accepted
    causal: bool = True                        # steps[t] uses x[<= t] only
    ssm_init: str = "real"                     # "real" (S4D-Real) or "lin" (complex S4D-Lin)
    ssm_selective: bool = True                 # input-dependent dt, B, C (Mamba) or fixed (S4D)
    ssm_chunk: int = 16                        # chunk length of the parallel scan
    decoder_layers: int = 1                    # blocks of the learned future-query decoder

    def __post_init__(self):
        self.dilations = tuple(self.dilations)
        if self.d_model < 1 or self.n_heads < 1 or self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a positive multiple of n_heads={self.n_heads}")
        for key in ("n_layers", "ssm_state_dim", "coarse_factor", "cross_every", "kernel_size",
                    "ff_mult", "max_len", "decoder_layers"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.ssm_chunk < 2:
            raise ValueError(f"ssm_chunk must be >= 2, got {self.ssm_chunk}")
        if not self.dilations or any(int(d) != d or d < 1 for d in self.dilations):
            raise ValueError(f"dilations must be a non-empty list of positive integers, got {self.dilations}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.ssm_init not in SSM_INITS:
            raise ValueError(f"ssm_init must be one of {SSM_INITS}, got {self.ssm_init!r}")


@dataclass
class MoETransformerConfig:
    """Knobs of `MoETransformerBackbone` (field by field in ``configs/models/moe_transformer.yaml``)."""

    d_model: int = 64                       # width D
    n_heads: int = 4                        # attention heads (divides d_model)
    n_layers: int = 3                       # blocks
    dilations: tuple[int, ...] = (1, 2, 4)  # block i convolves with dilations[i % len]
    kernel_size: int = 3                    # dilated conv kernel (in tokens)
    num_experts: int = 8                    # E expert FFNs per block
    top_k: int = 2                          # experts per token (sparse routing)
    router_dropout: float = 0.0             # dropout on the router's input
    ff_mult: int = 2                        # expert hidden width = ff_mult * d_model
    routing: str = "sparse"                 # "sparse" top-k or "dense" softmax over all experts
    capacity_factor: float | None = None    # cap tokens per expert at cf * N*top_k/E (None: no drops)
    aux_loss_weight: float = 0.01           # weight of the load-balancing loss in aux_loss
    z_loss_weight: float = 0.0              # router z-loss weight (0 = off)
    dropout: float = 0.1
    max_len: int = 512                      # longest context T accepted
    causal: bool = True                     # steps[t] uses x[<= t] only
    patch_len: int = 8                      # steps per patch
    patch_stride: int = 4                   # steps between patch starts (<= patch_len)
    token_mode: str = "patch"               # "patch" or "step" (one token per bar)
    decoder_layers: int = 1                 # blocks of the learned future-query decoder

    def __post_init__(self):
        self.dilations = tuple(self.dilations)
        check_routing(self.routing, self.num_experts, self.top_k, self.capacity_factor)
        if not 0.0 <= self.router_dropout < 1.0:
            raise ValueError(f"router_dropout must be in [0, 1), got {self.router_dropout}")
        if self.aux_loss_weight < 0 or self.z_loss_weight < 0:
            raise ValueError("aux_loss_weight and z_loss_weight must be >= 0")
        self.temporal()          # the shared fields are validated by the temporal config

    def temporal(self) -> TemporalBackboneConfig:
        """The `TemporalBackboneConfig` the reused attention + conv part is built from."""
        return TemporalBackboneConfig(
            d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers,
            dilations=self.dilations, kernel_size=self.kernel_size, ff_mult=self.ff_mult,
            dropout=self.dropout, patch_len=self.patch_len, patch_stride=self.patch_stride,
            token_mode=self.token_mode, max_len=self.max_len, causal=self.causal,
            decoder_layers=self.decoder_layers)
