"""Diagonal state-space mixer with a parallel (chunked associative) scan.

The recurrence ``h_t = a_t * h_{t-1} + b_t`` with a *diagonal* (elementwise) ``a`` is what S4D
(Gu et al., 2022, "On the Parameterization and Initialization of Diagonal State Space Models",
arXiv:2206.11893) and Mamba (Gu & Dao, 2023, arXiv:2312.00752) reduce to after discretisation:
per channel ``d`` and state ``n``, ``a_t = exp(dt_t * A[d, n])`` and ``b_t = dt_t * B_t[n] * x_t[d]``,
read out as ``y_t = Re(sum_n C_t[n] h_t[d, n]) + D[d] x_t[d]``. With a time-varying (selective)
``dt_t, B_t, C_t`` the layer is no longer a convolution, so it is computed as a scan.

`linear_scan` evaluates the recurrence without a Python loop over time:

- within chunks of ``chunk`` steps a Hillis-Steele associative scan (``log2(chunk)`` vectorised
  passes combining ``(a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2)``);
- across chunks the same scan, applied recursively to the chunk end states (``T / chunk`` of them),
  then one correction ``h_t += A_cum_t * h_end(previous chunk)``.

Only products of ``a`` are ever formed, never divisions by cumulative products, so decays that
underflow to 0 give the right answer (0 contribution) instead of inf/NaN: stable for any ``T``
and any ``|a| <= 1``, real or complex. The backward pass is itself a reverse scan
(``g_t = dL/dh_t + conj(a_{t+1}) g_{t+1}``, ``dL/db_t = g_t``, ``dL/da_t = g_t conj(h_{t-1})``), so
autograd keeps only ``a`` and ``h`` instead of every intermediate of the forward passes.

Dimension legend: ``B`` batch, ``T`` time, ``D`` channels, ``N`` state size per channel,
``R`` rank of the ``dt`` projection.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from plusultra_core.layers.options import SSM_INITS  # torch-free, shared with the configs

def naive_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """Reference step-by-step recurrence ``h_t = a_t h_{t-1} + b_t`` over dim 1 (tests only).

    ``a`` broadcastable to ``b: [B, T, ...]``; ``h0: [B, ...]`` (zeros when None) -> ``[B, T, ...]``.
    """
    a = a.expand_as(b)
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1)


def _hillis_steele(a: torch.Tensor, b: torch.Tensor, dim: int, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of ``b`` and cumulative product of ``a`` along ``dim`` (new tensors).

    Forward: ``b[t] <- b[t] + a[t] b[t-k]``, ``a[t] <- a[t] a[t-k]`` for ``k = 1, 2, 4, ...``
    (reverse: ``t+k``). Ping-pong buffers with fused ``addcmul(out=)``: the source and
    destination ranges overlap, so an in-place update would read half-updated values.
    """
    n = a.shape[dim]
    k = 1
    while k < n:
        m = n - k
        # destination [k, n) reading [0, m) forward; destination [0, m) reading [k, n) reverse
        dst, src = (k, 0) if not reverse else (0, k)
        keep = 0 if not reverse else m                      # the k entries that stay as they are
        a2, b2 = torch.empty_like(a), torch.empty_like(b)
        a2.narrow(dim, keep, k).copy_(a.narrow(dim, keep, k))
        b2.narrow(dim, keep, k).copy_(b.narrow(dim, keep, k))
        a_dst = a.narrow(dim, dst, m)
        torch.addcmul(b.narrow(dim, dst, m), a_dst, b.narrow(dim, src, m), out=b2.narrow(dim, dst, m))
        torch.mul(a_dst, a.narrow(dim, src, m), out=a2.narrow(dim, dst, m))
        a, b = a2, b2
        k *= 2
    return a, b


def _parallel_scan(a: torch.Tensor, b: torch.Tensor, chunk: int, reverse: bool = False) -> torch.Tensor:
    """No-autograd chunked scan over dim 1 of same-shaped ``a, b: [B, T, *S]`` -> ``h [B, T, *S]``.

    ``reverse=True`` computes ``h_t = a_t h_{t+1} + b_t`` (used by the backward pass).
    """
    B, T = b.shape[:2]
    rest = b.shape[2:]
    if T <= chunk:
        return _hillis_steele(a, b, 1, reverse)[1]
    nc = math.ceil(T / chunk)
    pad = nc * chunk - T
    if pad:
        # pad where the scan never looks from a real step (a=1, b=0): the end going forward,
        # the front going backward
        ones, zeros = a.new_ones((B, pad, *rest)), b.new_zeros((B, pad, *rest))
        a = torch.cat([a, ones] if not reverse else [ones, a], dim=1)
        b = torch.cat([b, zeros] if not reverse else [zeros, b], dim=1)
    a = a.reshape(B, nc, chunk, *rest)                          # [B, nc, L, *S]
    b = b.reshape(B, nc, chunk, *rest)
    a, b = _hillis_steele(a, b, 2, reverse)                     # within-chunk cumprod / scan
    # state leaving each chunk (its last step; its first going backward) = scan over chunks
    edge = -1 if not reverse else 0
    ends = _parallel_scan(a[:, :, edge], b[:, :, edge], chunk, reverse)   # [B, nc, *S]
    # each chunk starts from the neighbouring chunk's end state (in place: no overlap)
    if not reverse:
        b[:, 1:].addcmul_(a[:, 1:], ends[:, :-1].unsqueeze(2))
    else:
        b[:, :-1].addcmul_(a[:, :-1], ends[:, 1:].unsqueeze(2))
    b = b.reshape(B, nc * chunk, *rest)
    return b[:, :T] if not reverse else b[:, pad:]


class _LinearScan(torch.autograd.Function):
    """Autograd wrapper: forward and backward are both chunked parallel scans."""

    @staticmethod
    def forward(ctx, a, b, chunk):
        h = _parallel_scan(a, b, chunk)
        ctx.save_for_backward(a, h)
        ctx.chunk = chunk
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h = ctx.saved_tensors
        grad_h = grad_h.contiguous()
        # g_t = grad_h_t + conj(a_{t+1}) g_{t+1}, g_{T-1} = grad_h_{T-1}: a reverse scan over
        # t < T-1 with the last step folded in as the boundary state
        g = torch.empty_like(grad_h)
        g[:, -1] = grad_h[:, -1]
        if h.shape[1] > 1:
            a_next = a[:, 1:].conj()
            b_rev = grad_h[:, :-1].clone()
            b_rev[:, -1].addcmul_(a_next[:, -1], grad_h[:, -1])
            g[:, :-1] = _parallel_scan(a_next, b_rev, ctx.chunk, reverse=True)
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.empty_like(g)
            grad_a[:, 0] = 0                                   # h_{-1} = 0 (h0 is folded into b)
            torch.mul(g[:, 1:], h[:, :-1].conj(), out=grad_a[:, 1:])
        return grad_a, g, None


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None,
                chunk: int = 16) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` along dim 1, as a parallel chunked scan (differentiable).

    ``b: [B, T, ...]`` real or complex; ``a`` broadcastable to ``b`` (same dtype kind);
    ``h0: [B, ...]`` initial state (zeros when None). Returns ``h: [B, T, ...]``.
    """
    if b.dim() < 2:
        raise ValueError(f"linear_scan expects b of shape [B, T, ...], got {tuple(b.shape)}")
    if chunk < 2:
        raise ValueError(f"chunk must be >= 2, got {chunk}")
    a = a.expand_as(b)
    if h0 is not None:
        # fold the initial state into the first input: h_0 = a_0 h0 + b_0
        b = torch.cat([b[:, :1] + a[:, :1] * h0.unsqueeze(1), b[:, 1:]], dim=1)
    return _LinearScan.apply(a, b, chunk)


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


class DiagonalSSM(nn.Module):
    """Gated diagonal state-space mixer ``[B, T, D] -> [B, T, D]`` (causal by construction).

    ``init="real"``: S4D-Real, ``A[d, n] = -(n + 1)`` (real decays, cheapest);
    ``init="lin"``: S4D-Lin, ``A[d, n] = -1/2 + i pi n`` (complex: damped oscillations, 4x the
    arithmetic). ``selective=True`` makes ``dt, B, C`` functions of the input (Mamba's S6);
    ``False`` keeps them fixed parameters (S4D, time-invariant). Layout after Mamba: input
    projection to ``(u, z)``, SSM on ``silu(u)``, output gated by ``silu(z)``, projected back.
    """

    def __init__(self, d_model: int, state_dim: int = 16, *, init: str = "real",
                 selective: bool = True, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 dt_rank: int | None = None, chunk: int = 16, dropout: float = 0.0):
        super().__init__()
        if init not in SSM_INITS:
            raise ValueError(f"init must be one of {SSM_INITS}, got {init!r}")
        if state_dim < 1:
            raise ValueError(f"state_dim must be >= 1, got {state_dim}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        D, N = d_model, state_dim
        self.d_model, self.state_dim = D, N
        self.is_complex, self.selective, self.chunk = init == "lin", selective, chunk
        n = torch.arange(N, dtype=torch.float32)
        re = torch.full((D, N), 0.5) if self.is_complex else (n + 1).expand(D, N).clone()
        self.log_neg_re = nn.Parameter(torch.log(re))            # Re A = -exp(.) < 0 always
        if self.is_complex:
            self.a_imag = nn.Parameter((math.pi * n).expand(D, N).clone())
        # dt log-uniform in [dt_min, dt_max]: a spread of memory lengths across channels
        dt = torch.exp(torch.rand(D) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.in_proj = nn.Linear(D, 2 * D)
        self.n_bc = n_bc = N * (2 if self.is_complex else 1)    # real + imag parts when complex
        if selective:
            R = dt_rank or max(1, math.ceil(D / 16))
            self.dt_rank = R
            self.x_proj = nn.Linear(D, R + 2 * n_bc, bias=False)
            self.dt_proj = nn.Linear(R, D)
            with torch.no_grad():
                self.dt_proj.bias.copy_(_inverse_softplus(dt))
        else:
            self.log_dt = nn.Parameter(torch.log(dt))
            self.B = nn.Parameter(torch.randn(D, n_bc) / math.sqrt(N))
            self.C = nn.Parameter(torch.randn(D, n_bc) / math.sqrt(N))
        self.D_skip = nn.Parameter(torch.ones(D))
        self.out_proj = nn.Linear(D, D)
        self.dropout = nn.Dropout(dropout)

    def _A(self) -> torch.Tensor:
        """``[D, N]`` continuous-time diagonal, real part strictly negative (stable)."""
        re = -torch.exp(self.log_neg_re.float())
        return torch.complex(re, self.a_imag.float()) if self.is_complex else re

    def _as_state(self, v: torch.Tensor) -> torch.Tensor:
        """``[..., n_bc]`` real -> ``[..., N]`` (complex when the state is complex)."""
        if not self.is_complex:
            return v
        re, im = v.split(self.state_dim, dim=-1)
        return torch.complex(re.contiguous(), im.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, T, D]`` -> ``[B, T, D]``; the output at ``t`` depends on inputs ``<= t`` only."""
        u, z = self.in_proj(x).chunk(2, dim=-1)                   # [B, T, D] each
        u = F.silu(u)
        # the recurrence runs in fp32 even under bf16 autocast: products of ~T decays in bf16
        # lose the memory the layer exists for
        with torch.autocast(device_type=x.device.type, enabled=False):
            u32 = u.float()
            A = self._A()                                         # [D, N]
            if self.selective:
                dt_in, b_in, c_in = self.x_proj(u32).split(
                    [self.dt_rank, self.n_bc, self.n_bc], dim=-1)
                dt = F.softplus(self.dt_proj(dt_in))              # [B, T, D]
                Bt = self._as_state(b_in).unsqueeze(2)            # [B, T, 1, N]
                Ct = self._as_state(c_in).unsqueeze(2)            # [B, T, 1, N]
            else:
                dt = torch.exp(self.log_dt.float()).expand_as(u32)  # [B, T, D]
                Bt, Ct = self._as_state(self.B), self._as_state(self.C)  # [D, N]
            a = torch.exp(dt.unsqueeze(-1) * A)                   # [B, T, D, N] zero-order hold
            b = (dt * u32).unsqueeze(-1) * Bt                     # [B, T, D, N] Euler for B
            h = linear_scan(a, b, chunk=self.chunk)               # [B, T, D, N]
            # contract N without materialising h * C: [B, T, D, N] x [B, T, N] -> [B, T, D]
            y = torch.einsum("btdn,btn->btd", h, Ct[:, :, 0]) if self.selective else \
                torch.einsum("btdn,dn->btd", h, Ct)
            y = (y.real if self.is_complex else y) + self.D_skip * u32
        y = y.to(u.dtype) * F.silu(z)                             # gate [B, T, D]
        return self.dropout(self.out_proj(y))
