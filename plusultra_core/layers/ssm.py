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

SSM_INITS = ("real", "lin")


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


def _hillis_steele_(a: torch.Tensor, b: torch.Tensor, dim: int) -> None:
    """In place: ``b`` becomes the inclusive scan along ``dim``, ``a`` the cumulative product."""
    n = a.shape[dim]
    k = 1
    while k < n:
        # b[t] <- b[t] + a[t] b[t-k];  a[t] <- a[t] a[t-k]   (t >= k). Temporaries first: the
        # source and destination slices overlap, so an in-place fused op would read updated values.
        a_hi, a_lo = a.narrow(dim, k, n - k), a.narrow(dim, 0, n - k)
        tb = a_hi * b.narrow(dim, 0, n - k)
        ta = a_hi * a_lo
        b.narrow(dim, k, n - k).add_(tb)
        a_hi.copy_(ta)
        k *= 2


def _parallel_scan(a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
    """No-autograd chunked scan over dim 1 of same-shaped ``a, b: [B, T, *S]`` -> ``h [B, T, *S]``."""
    B, T = b.shape[:2]
    rest = b.shape[2:]
    if T <= chunk:
        a, b = a.clone(), b.clone()
        _hillis_steele_(a, b, 1)
        return b
    nc = math.ceil(T / chunk)
    pad = nc * chunk - T
    if pad:
        # padding at the *end* (a=1, b=0) cannot change any real step: the scan only looks back
        a = torch.cat([a, a.new_ones((B, pad, *rest))], dim=1)
        b = torch.cat([b, b.new_zeros((B, pad, *rest))], dim=1)
    a = a.reshape(B, nc, chunk, *rest).clone()                 # [B, nc, L, *S]
    b = b.reshape(B, nc, chunk, *rest).clone()
    _hillis_steele_(a, b, 2)                                   # within-chunk cumprod / scan
    # state at the end of each chunk = scan over chunks of (A_cum[last], h_within[last])
    ends = _parallel_scan(a[:, :, -1], b[:, :, -1], chunk)     # [B, nc, *S]
    # chunk c (>0) starts from the end state of chunk c-1
    b[:, 1:] += a[:, 1:] * ends[:, :-1].unsqueeze(2)
    return b.reshape(B, nc * chunk, *rest)[:, :T]


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
        # g_t = grad_h_t + conj(a_{t+1}) g_{t+1}: a forward scan on the time-reversed sequence
        a_next = torch.cat([a[:, 1:], torch.zeros_like(a[:, :1])], dim=1).conj()
        g = _parallel_scan(a_next.flip(1), grad_h.contiguous().flip(1), ctx.chunk).flip(1)
        h_prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        grad_a = g * h_prev.conj() if ctx.needs_input_grad[0] else None
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
            y = (h * Ct).sum(-1)                                  # [B, T, D]
            y = (y.real if self.is_complex else y) + self.D_skip * u32
        y = y.to(u.dtype) * F.silu(z)                             # gate [B, T, D]
        return self.dropout(self.out_proj(y))
