"""Feature families; importing this package registers them all into `DEFAULT_REGISTRY`.

Every function here maps a `WideContext` to a ``[L, S]`` matrix, vectorised across symbols,
causal (row ``t`` uses rows ``<= t``), and scale-free (returns, ratios, z-scores, ranks).
"""

from plusultra_core.features.families import (  # noqa: F401  (imported for registration)
    returns,
    volatility,
    trend,
    oscillators,
    volume,
    moments,
    spectral,
    calendar,
    cross_section,
    alternative,
)
